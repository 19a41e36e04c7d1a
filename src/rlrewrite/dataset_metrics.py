"""Diversity of a set of SFT targets: distinct-n, self-BLEU (sacrebleu) and embedding spread."""

from __future__ import annotations

import random

import numpy as np
from sacrebleu.metrics import BLEU

from .rewards import mean_pairwise_distance


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
