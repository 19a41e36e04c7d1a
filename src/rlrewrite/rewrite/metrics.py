"""Metrics of a set of SFT targets: diversity (distinct-n, self-BLEU via sacrebleu, embedding
spread), π0's QA-style NLL, length, and whether the rewrites kept the reasoning."""

from __future__ import annotations

import random

import numpy as np
from sacrebleu.metrics import BLEU

from rlrewrite.reward.echo import InstructionEcho
from rlrewrite.reward.equations import states_false_equation
from rlrewrite.reward.gate import is_answer_only, word_count
from rlrewrite.reward.group_rewards import mean_pairwise_distance


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams over all n-grams of the whitespace-tokenised texts."""
    grams = [tuple(tokens[i:i + n]) for tokens in (t.split() for t in texts)
             for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: list[str], max_texts: int, seed: int) -> float:
    """Mean sentence BLEU of each text against all the others (higher = less diverse), on a
    seeded sample of at most `max_texts` texts to bound the quadratic cost."""
    if len(texts) < 2:
        return 0.0
    sample = random.Random(seed).sample(texts, min(max_texts, len(texts)))
    bleu = BLEU(effective_order=True)
    scores = [bleu.sentence_score(text, sample[:i] + sample[i + 1:]).score
              for i, text in enumerate(sample)]
    return float(np.mean(scores))


def embedding_spread(embeddings: np.ndarray) -> float:
    """Mean pairwise (1 - cos)/2 distance of unit embeddings (the reward's D(S))."""
    return mean_pairwise_distance(np.asarray(embeddings, dtype=np.float64))


SELF_BLEU_TEXTS = 200


def reasoning_metrics(out: list[dict], echo: InstructionEcho) -> dict:
    """Did the rewrites keep the reasoning? Answer-only share of the accepted rewrites, the shares
    of targets stating a false equation and repeating the rewrite prompt's wording, and lengths
    (words) relative to the expert solutions they replace."""
    accepted = [r for r in out if r["rewritten"]]

    def ratio(rows, field):
        return sum(word_count(r[field]) for r in rows) / max(1, sum(word_count(r["solution"])
                                                                   for r in rows))

    answer_only = [is_answer_only(r["target"], r["solution"], r["question"], r["answer"])
                   for r in accepted]
    false_steps = [states_false_equation(r["target"]) for r in out]
    echoes = [echo(r["target"], r["question"], r["solution"]) for r in out]
    return {
        "accepted_answer_only_share": round(float(np.mean(answer_only)), 4) if accepted else None,
        # targets (accepted rewrites and fallbacks alike) that state a false equation
        "false_equation_share": round(float(np.mean(false_steps)), 4),
        "instruction_echo_share": round(float(np.mean(echoes)), 4),
        "accepted_length_ratio": round(ratio(accepted, "target"), 4) if accepted else None,
        "target_length_ratio": round(ratio(out, "target"), 4),
    }


def target_metrics(out: list[dict], scorer, embedder, tokenizer, seed: int,
                   echo: InstructionEcho) -> dict:
    """The rewrite stage's summary of its targets: acceptance, π0's QA-style NLL of the targets
    versus the expert solutions, diversity, length, and whether the reasoning was kept."""
    targets = [r["target"] for r in out]
    questions = [r["question"] for r in out]
    nll_original = scorer.qa_nll(questions, [r["solution"] for r in out])
    nll_targets = nll_original.copy()
    # a fallback (and every `original` target) is the expert solution: scored once
    changed = [i for i, r in enumerate(out) if r["target"] != r["solution"]]
    if changed:
        nll_targets[changed] = scorer.qa_nll([questions[i] for i in changed],
                                             [targets[i] for i in changed])
    lengths = [len(ids) for ids in tokenizer(targets, add_special_tokens=False)["input_ids"]]
    attempted = [r for r in out if r["attempts"] > 0]
    return {
        "examples": len(out),
        "acceptance_rate": round(float(np.mean([r["rewritten"] for r in out])), 4),
        "fallback_rate": round(sum(not r["rewritten"] for r in attempted) / len(out), 4),
        "attempts_mean": round(float(np.mean([r["attempts"] for r in out])), 4),
        "qa_nll_targets": round(float(nll_targets.mean()), 4),
        "qa_nll_original": round(float(nll_original.mean()), 4),
        "qa_nll_shift": round(float(nll_targets.mean() - nll_original.mean()), 4),
        "distinct_1": round(distinct_n(targets, 1), 4),
        "distinct_2": round(distinct_n(targets, 2), 4),
        "self_bleu": round(self_bleu(targets, SELF_BLEU_TEXTS, seed), 3),
        "embedding_spread": round(embedding_spread(embedder.embed(targets)), 4),
        # the expert solutions' spread: a rewriter should not make the targets less diverse
        "embedding_spread_original": round(embedding_spread(
            embedder.embed([r["solution"] for r in out])), 4),
        "target_tokens_mean": round(float(np.mean(lengths)), 2),
        **reasoning_metrics(out, echo),
    }
