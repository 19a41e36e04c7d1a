"""The rewriter's reward as a TRL GRPOTrainer reward function.

TRL calls a reward function once per process with that process's completions, a prompt's K
completions consecutive, plus the dataset's other columns repeated per completion. This adapter
cuts them into groups (checking none is split), runs the gate (`gate.py`) on all, the model-based
terms on the feasible ones only, in one batch each, and combines per group (`rewards.combine`).

A truncated rollout (no end-of-turn token) fails the gate (`truncated: fail`, the default), or
gets no reward signal at all (`truncated: skip`): the adapter returns None for it, which TRL
leaves out of the group's mean and std and gives a zero advantage. Measured on the embedded
default, `skip` lets rollouts grow until most are cut off (docs/pipeline.md, "The gate keeps the reasoning").
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from rlrewrite.reward.gate import Gate, is_answer_only, word_count
from rlrewrite.reward.group_rewards import combine, split_groups


def completion_text(completion) -> str:
    """A TRL completion: a string, or (conversational) a list of messages."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content", "") for message in completion)


def is_truncated(ids: list[int], end_ids: set[int]) -> bool:
    """A rollout is truncated when it does not end with an end-of-turn (or pad) token, as TRL
    decides it; one that ends normally at exactly the length cap is complete."""
    return not ids or ids[-1] not in end_ids


def _nanmean(values: np.ndarray) -> float:
    return float(np.mean(values)) if np.size(values) else float("nan")


class RewriteReward:
    """r = r_task * (1 + λ_dist r_dist + λ_div r_div + λ_anchor r_anchor) per group of K rewrites
    (λ_anchor = 0: the paper's reward)."""

    __name__ = "rewrite_reward"  # TRL names reward columns after it

    def __init__(self, gate: Gate, scorer, embedder, num_generations: int, lambda_dist: float,
                 lambda_div: float, end_token_ids: set[int], truncated: str = "fail",
                 on_samples: Callable[[int, dict], None] | None = None, samples_every: int = 0,
                 lambda_anchor: float = 0.0):
        self.gate = gate
        self.scorer = scorer  # π0's QA-style NLL
        self.embedder = embedder  # has .embed(texts) -> unit vectors; None when λ_div == 0
        self.k = num_generations
        self.lambda_dist = lambda_dist
        self.lambda_div = lambda_div
        self.lambda_anchor = lambda_anchor
        self.end_token_ids = set(end_token_ids)
        if truncated not in ("fail", "skip"):
            raise ValueError(f"truncated must be 'fail' or 'skip', got {truncated!r}")
        self.skip_truncated = truncated == "skip"
        self.on_samples = on_samples
        self.samples_every = samples_every
        self.scoring_seconds = 0.0

    def score(self, texts: list[str], questions: list[str], answers: list[str],
              solutions: list[str], ids: list, truncated: list[bool] | None = None) -> dict:
        """Per rewrite: `total` (NaN where truncated), the gate's checks, r_dist, r_div, NLL."""
        groups = split_groups(ids, self.k)
        checks = self.gate(texts, questions, answers, solutions, truncated)
        gate = checks.passed.astype(float)
        feasible = np.flatnonzero(gate)
        nll = np.full(len(texts), np.nan)
        embeddings = None
        if feasible.size:
            nll[feasible] = self.scorer.qa_nll([questions[i] for i in feasible],
                                               [texts[i] for i in feasible])
            if self.embedder is not None and self.lambda_div > 0:
                vectors = self.embedder.embed([texts[i] for i in feasible])
                embeddings = np.zeros((len(texts), vectors.shape[1]))
                embeddings[feasible] = vectors
        # π0's NLL of each group's expert solution (groups with a feasible rewrite): the anchor
        # term's reference, and the step metric of where the rewrites stand against it
        reference = np.full(len(groups), np.nan)
        anchored = [g for g, group in enumerate(groups) if gate[group].any()]
        if anchored:
            reference[anchored] = self.scorer.qa_nll(
                [questions[groups[g].start] for g in anchored],
                [solutions[groups[g].start] for g in anchored])
        out = {name: np.zeros(len(texts)) for name in ("total", "dist", "div", "anchor")}
        for g, group in enumerate(groups):
            mask = gate[group] > 0
            emb = embeddings[group][mask] if embeddings is not None else None
            result = combine(gate[group], nll[group][mask], emb, self.lambda_dist, self.lambda_div,
                             self.lambda_anchor, reference[g])
            for name in ("total", "dist", "div", "anchor"):
                out[name][group] = getattr(result, name)
        if truncated is not None and self.skip_truncated:
            out["total"][np.asarray(truncated, dtype=bool)] = np.nan
        out.update(gate=gate, nll=nll, checks=checks, reference_nll=reference)
        return out

    def step_metrics(self, out: dict, texts: list[str], questions: list[str], answers: list[str],
                     solutions: list[str], truncated: list[bool] | None) -> dict[str, float]:
        """What moves during training; NaN where a quantity is undefined this step (e.g. no
        feasible rewrite), never a placeholder 0."""
        checks, gate = out["checks"], out["gate"]
        feasible = gate > 0
        nll_groups = out["nll"].reshape(-1, self.k)
        spreads = [np.nanstd(row) for row in nll_groups if np.sum(~np.isnan(row)) >= 2]
        judged = checks.judge[~np.isnan(checks.judge)]
        return {
            "rewrite/gate_pass_rate": float(gate.mean()),
            "rewrite/answer_pass_rate": float(checks.answer.mean()),
            "rewrite/reasoning_pass_rate": float(checks.reasoning.mean()),
            "rewrite/equations_pass_rate": float(checks.equations.mean()),
            "rewrite/echo_pass_rate": float(checks.echo.mean()),
            "rewrite/judge_pass_rate": _nanmean(judged),
            "rewrite/truncated_share": float(np.mean(truncated)) if truncated is not None else 0.0,
            "rewrite/answer_only_share": float(np.mean(
                [is_answer_only(*row) for row in zip(texts, solutions, questions, answers)])),
            "rewrite/length_ratio": float(np.mean(
                [word_count(t) / max(1, word_count(s)) for t, s in zip(texts, solutions)])),
            "rewrite/feasible_set_size": float(feasible.reshape(-1, self.k).sum(1).mean()),
            "rewrite/r_div_feasible_mean": _nanmean(out["div"][feasible]),
            "rewrite/qa_nll_feasible_mean": _nanmean(out["nll"][feasible]),
            "rewrite/qa_nll_group_spread": _nanmean(np.array(spreads)),
            "rewrite/r_anchor_feasible_mean": _nanmean(out["anchor"][feasible]),
            # feasible rewrites' NLL minus their expert solution's (< 0: more likely under π0)
            "rewrite/qa_nll_vs_expert": _nanmean(
                (out["nll"] - np.repeat(out["reference_nll"], self.k))[feasible]),
        }

    def __call__(self, prompts, completions, completion_ids=None, question=None, answer=None,
                 solution=None, id=None, log_metric=None, trainer_state=None,
                 **_) -> list[float | None]:
        started = time.perf_counter()
        texts = [completion_text(c) for c in completions]
        truncated = ([is_truncated(ids, self.end_token_ids) for ids in completion_ids]
                     if completion_ids is not None else None)
        out = self.score(texts, question, answer, solution, id, truncated)
        self.scoring_seconds += time.perf_counter() - started
        if log_metric is not None:
            for name, value in self.step_metrics(out, texts, question, answer, solution,
                                                 truncated).items():
                log_metric(name, value)
            rewards = out["total"].reshape(-1, self.k)
            dead = [np.nanstd(row) == 0 for row in rewards if np.sum(~np.isnan(row)) >= 1]
            log_metric("rewrite/dead_group_share", _nanmean(np.array(dead, dtype=float)))
            log_metric("rewrite/scoring_seconds", time.perf_counter() - started)
        step = trainer_state.global_step if trainer_state is not None else 0
        if self.on_samples is not None and self.samples_every and step % self.samples_every == 0:
            self.on_samples(step, {
                "step": [step] * len(texts), "id": list(map(str, id)),
                "prompt": [completion_text(p) for p in prompts], "rewrite": texts,
                "truncated": list(truncated) if truncated is not None else [False] * len(texts),
                "gate": out["gate"].tolist(), "r_dist": out["dist"].tolist(),
                "r_div": out["div"].tolist(), "reward": np.nan_to_num(out["total"]).tolist()})
        return [None if np.isnan(r) else float(r) for r in out["total"]]
