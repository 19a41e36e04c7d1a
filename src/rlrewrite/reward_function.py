"""The rewriter's reward as a TRL GRPOTrainer reward function.

TRL calls a reward function once per process with that process's completions, a prompt's K
completions consecutive, plus the dataset's other columns repeated per completion. This adapter
cuts them into groups (checking none is split), scores the gate for all, the model-based terms
for the feasible ones only, in one batch each, and combines per group (`rewards.combine`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .answers import matches_gold, parse_gold
from .rewards import combine, split_groups


def completion_text(completion) -> str:
    """A TRL completion: a string, or (conversational) a list of messages."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content", "") for message in completion)


def gate_rewrites(texts: list[str], questions: list[str], answers: list[str],
                  truncated: list[bool] | None = None, judge=None) -> np.ndarray:
    """r_task in {0, 1}: the final answer is equivalent to the gold one and, when a `judge`
    (a BaseModelScorer) is given, π0 judges the reasoning valid. Empty and truncated rewrites
    fail. The judge only sees rewrites whose answer already matches."""
    golds: dict[str, list] = {}
    passed = np.zeros(len(texts))
    for i, (text, answer) in enumerate(zip(texts, answers)):
        if not text.strip() or (truncated is not None and truncated[i]):
            continue
        if answer not in golds:
            golds[answer] = parse_gold(answer)
        passed[i] = float(matches_gold(text, golds[answer]))
    if judge is not None and passed.any():
        idx = np.flatnonzero(passed)
        verdicts = judge.judge([questions[i] for i in idx], [answers[i] for i in idx],
                               [texts[i] for i in idx])
        passed[idx] = verdicts.astype(float)
    return passed


class RewriteReward:
    """r = r_task * (1 + λ_dist r_dist + λ_div r_div) per group of K rewrites."""

    __name__ = "rewrite_reward"  # TRL names reward columns after it

    def __init__(self, scorer, embedder, num_generations: int, lambda_dist: float,
                 lambda_div: float, use_judge: bool, max_completion_length: int,
                 on_samples: Callable[[int, dict], None] | None = None, samples_every: int = 0):
        self.scorer = scorer
        self.embedder = embedder  # has .embed(texts) -> unit vectors; None when λ_div == 0
        self.k = num_generations
        self.lambda_dist = lambda_dist
        self.lambda_div = lambda_div
        self.use_judge = use_judge
        self.max_completion_length = max_completion_length
        self.on_samples = on_samples
        self.samples_every = samples_every
        self.scoring_seconds = 0.0

    def gate(self, texts: list[str], questions: list[str], answers: list[str],
             completion_ids: list[list[int]] | None) -> np.ndarray:
        truncated = ([len(ids) >= self.max_completion_length for ids in completion_ids]
                     if completion_ids is not None else None)
        return gate_rewrites(texts, questions, answers, truncated,
                             self.scorer if self.use_judge else None)

    def score(self, texts: list[str], questions: list[str], answers: list[str], ids: list,
              completion_ids: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        groups = split_groups(ids, self.k)
        gate = self.gate(texts, questions, answers, completion_ids)
        feasible = np.flatnonzero(gate)
        nll = np.zeros(len(texts))
        embeddings = None
        if feasible.size:
            nll[feasible] = self.scorer.qa_nll([questions[i] for i in feasible],
                                               [texts[i] for i in feasible])
            if self.embedder is not None and self.lambda_div > 0:
                vectors = self.embedder.embed([texts[i] for i in feasible])
                embeddings = np.zeros((len(texts), vectors.shape[1]))
                embeddings[feasible] = vectors
        out = {name: np.zeros(len(texts)) for name in ("total", "gate", "dist", "div", "nll")}
        for group in groups:
            g_gate = gate[group]
            mask = g_gate > 0
            emb = embeddings[group][mask] if embeddings is not None else None
            result = combine(g_gate, nll[group][mask], emb, self.lambda_dist, self.lambda_div)
            for name in ("total", "gate", "dist", "div"):
                out[name][group] = getattr(result, name)
        out["nll"] = np.where(gate > 0, nll, np.nan)
        out["total"] = np.nan_to_num(out["total"], nan=0.0, posinf=0.0, neginf=0.0)
        return out

    def __call__(self, prompts, completions, completion_ids=None, question=None, answer=None,
                 id=None, log_metric=None, trainer_state=None, **_) -> list[float]:
        started = time.perf_counter()
        texts = [completion_text(c) for c in completions]
        out = self.score(texts, question, answer, id, completion_ids)
        self.scoring_seconds += time.perf_counter() - started

        groups = out["total"].reshape(-1, self.k)
        feasible_sizes = out["gate"].reshape(-1, self.k).sum(1)
        feasible = out["gate"] > 0
        if log_metric is not None:
            log_metric("rewrite/gate_pass_rate", float(out["gate"].mean()))
            log_metric("rewrite/r_dist_feasible_mean", float(out["dist"][feasible].mean()) if feasible.any() else 0.0)
            log_metric("rewrite/r_div_feasible_mean", float(out["div"][feasible].mean()) if feasible.any() else 0.0)
            log_metric("rewrite/feasible_set_size", float(feasible_sizes.mean()))
            log_metric("rewrite/dead_group_share", float((groups.std(1) == 0).mean()))
            log_metric("rewrite/qa_nll_feasible_mean", float(np.nanmean(out["nll"])) if feasible.any() else 0.0)
            log_metric("rewrite/scoring_seconds", time.perf_counter() - started)
        step = trainer_state.global_step if trainer_state is not None else 0
        if self.on_samples is not None and self.samples_every and step % self.samples_every == 0:
            self.on_samples(step, {
                "step": [step] * len(texts), "id": list(map(str, id)),
                "prompt": [completion_text(p) for p in prompts], "rewrite": texts,
                "gate": out["gate"].tolist(), "r_dist": out["dist"].tolist(),
                "r_div": out["div"].tolist(), "reward": out["total"].tolist()})
        return out["total"].tolist()
