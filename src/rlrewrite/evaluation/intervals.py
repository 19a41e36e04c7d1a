"""Paired bootstrap intervals over evaluation items (and training seeds).

Forgetting and gain are means of per-item differences between two models scored on the same
items, so their uncertainty comes from which items were drawn (and, across experiments, which
seeds): resample both, keep the pairing.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000


def bootstrap(diff: np.ndarray, groups: list[slice], resamples: int, rng) -> tuple[float, float, float]:
    """Mean of a (seeds, items) matrix and its 95% interval: seeds resampled with replacement,
    items resampled within each group (benchmark), the same items for every seed."""
    seeds, items = diff.shape
    seed_w = np.stack([np.bincount(rng.integers(0, seeds, seeds), minlength=seeds)
                       for _ in range(resamples)]) / seeds
    item_w = np.zeros((resamples, items))
    for group in groups:
        n = group.stop - group.start
        draws = rng.integers(0, n, (resamples, n)) + group.start
        for b in range(resamples):
            item_w[b] += np.bincount(draws[b], minlength=items)
    item_w /= items
    means = np.einsum("bs,sn,bn->b", seed_w, diff, item_w)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)


def pooled(diffs: list[list[float]], seed: int = 0,
           resamples: int = RESAMPLES) -> tuple[float, float, float]:
    """Item-weighted mean of several tasks' per-item differences (one model pair) and its 95%
    interval, items resampled within each task."""
    flat = np.asarray([d for task in diffs for d in task], dtype=float)[None, :]
    groups, start = [], 0
    for task in diffs:
        groups.append(slice(start, start + len(task)))
        start += len(task)
    return bootstrap(flat, groups, resamples, np.random.default_rng(seed))
