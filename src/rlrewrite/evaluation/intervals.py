"""Intervals for gain and forgetting: over training seeds (the unit of a verdict) and over items.

Forgetting and gain are means of per-item differences between two models scored on the same
items. Across experiments, the training seed is the unit: each seed gives one paired difference
(its mean over items), and `t_interval` over those differences is what a verdict reads. It is
the interval for these benchmark items; which items were drawn is the secondary, item-level
interval (`bootstrap` over items of the seed-averaged differences). A bootstrap that resamples
3 seeds has only 10 distinct resamples and acts as a sign test (tests/test_intervals.py
measures its coverage).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

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


def t_interval(values) -> tuple[float, float | None, float | None]:
    """Mean of per-seed values and its 95% Student-t interval; no interval under two seeds."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return float("nan"), None, None
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None, None
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def seeds_needed(sd: float, delta: float, power: float = 0.8, most: int = 10_000) -> int | None:
    """Seeds for a paired difference of `delta` to be resolved (its two-sided 95% t-interval
    excluding 0) with probability `power`, when per-seed differences spread with `sd`:
    the smallest n with (t_.975 + t_power) * sd / sqrt(n) <= delta (n - 1 degrees of freedom)."""
    if not sd > 0 or not delta > 0:
        return None
    for n in range(2, most + 1):
        if (stats.t.ppf(0.975, n - 1) + stats.t.ppf(power, n - 1)) * sd / np.sqrt(n) <= delta:
            return n
    return None
