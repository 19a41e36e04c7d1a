"""The rewriter's reward for one group S_x of K rewrites of the same question (docs/method.md, Stage 1).

Pure functions over numbers: the model-dependent quantities (gate, NLL, embeddings) come from
`scoring.py`. Everything here is computed over the whole group at once: the alignment reward is
a z-score within the group's feasible rewrites S_x+ and the diversity reward is a marginal
contribution to the group's spread, so a reward computed per single rewrite (the bug in the
authors' released code) cannot be expressed with these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STD_EPS = 1e-6
# nats/token over which the anchor reward goes from 0.27 to 0.73: a rewrite 0.1 nats/token more
# likely under π0 than the expert solution scores 0.73 (our extension; λ_anchor 0 is the paper's)
ANCHOR_SCALE = 0.1


def alignment_rewards(nll: np.ndarray) -> np.ndarray:
    """r_dist over the feasible rewrites: sigmoid(-z) of the per-token NLL under π0 given only the
    question, z-scored with the population std (+1e-6). One feasible rewrite gets 0.5."""
    nll = np.asarray(nll, dtype=np.float64)
    if nll.size == 0:
        return nll
    z = (nll - nll.mean()) / (nll.std() + STD_EPS)
    return 1.0 / (1.0 + np.exp(z))


def anchor_rewards(nll: np.ndarray, reference_nll: float) -> np.ndarray:
    """r_anchor over the feasible rewrites: sigmoid((ℓ(y*) − ℓ_i) / ANCHOR_SCALE), an absolute
    pull toward π0. The paper's r_dist is a within-group z-score: a group whose every rewrite is
    less likely under π0 than the expert solution still rewards its least unlikely one, so the
    rewriter can be trained toward the gate while its rewrites drift away from π0. This term
    compares each rewrite with the expert solution of its question instead."""
    nll = np.asarray(nll, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-(reference_nll - nll) / ANCHOR_SCALE))


def mean_pairwise_distance(embeddings: np.ndarray) -> float:
    """D(S): mean over pairs of (1 - cos)/2 of unit vectors; 0 for fewer than two."""
    n = len(embeddings)
    if n < 2:
        return 0.0
    cos = embeddings @ embeddings.T
    upper = np.triu_indices(n, k=1)
    return float(np.mean((1.0 - cos[upper]) / 2.0))


def diversity_rewards(embeddings: np.ndarray) -> np.ndarray:
    """r_div,i = max(0, D(S) - D(S minus i)) over the feasible rewrites' unit embeddings; all zero
    when fewer than two are feasible."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    n = len(embeddings)
    if n < 2:
        return np.zeros(n)
    full = mean_pairwise_distance(embeddings)
    keep = ~np.eye(n, dtype=bool)
    return np.array([max(0.0, full - mean_pairwise_distance(embeddings[keep[i]]))
                     for i in range(n)])


@dataclass(frozen=True)
class GroupRewards:
    total: np.ndarray  # r_i for every rewrite of the group
    gate: np.ndarray  # r_task,i in {0, 1}
    dist: np.ndarray  # r_dist,i (0 where infeasible)
    div: np.ndarray  # r_div,i (0 where infeasible)
    anchor: np.ndarray  # r_anchor,i (0 where infeasible, or without a reference NLL)


def combine(gate: np.ndarray, nll_feasible: np.ndarray, emb_feasible: np.ndarray | None,
            lambda_dist: float, lambda_div: float, lambda_anchor: float = 0.0,
            reference_nll: float | None = None) -> GroupRewards:
    """r_i = r_task,i * (1 + λ_dist r_dist,i + λ_div r_div,i + λ_anchor r_anchor,i); the
    feasible-only arrays are in the order of the gate's ones. `emb_feasible` may be None when
    λ_div is 0 (nothing to embed); `reference_nll` (π0's QA-NLL of the expert solution) is
    needed when λ_anchor > 0.

    A feasible rewrite that cannot be scored (a NaN/inf NLL, a non-finite or zero embedding, as
    an empty text can give) is made infeasible: r_task = 0, so r_i = 0, and it is left out of the
    group's z-scores and spread. No NaN reaches the advantages."""
    gate = np.array(gate, dtype=np.float64)
    feasible = gate > 0
    if int(feasible.sum()) != len(nll_feasible):
        raise ValueError(f"{len(nll_feasible)} NLL values for {int(feasible.sum())} feasible rewrites")
    nll_feasible = np.asarray(nll_feasible, dtype=np.float64)
    scorable = np.isfinite(nll_feasible)
    if emb_feasible is not None:
        emb_feasible = np.asarray(emb_feasible, dtype=np.float64)
        scorable &= np.isfinite(emb_feasible).all(axis=1)
        scorable &= np.linalg.norm(np.nan_to_num(emb_feasible), axis=1) > 0
    if not scorable.all():
        gate[np.flatnonzero(feasible)[~scorable]] = 0.0
        feasible = gate > 0
        nll_feasible = nll_feasible[scorable]
        emb_feasible = emb_feasible[scorable] if emb_feasible is not None else None
    dist = np.zeros_like(gate)
    div = np.zeros_like(gate)
    anchor = np.zeros_like(gate)
    dist[feasible] = alignment_rewards(nll_feasible)
    if emb_feasible is not None:
        div[feasible] = diversity_rewards(emb_feasible)
    if lambda_anchor > 0 and feasible.any():
        if reference_nll is None or not np.isfinite(reference_nll):
            raise ValueError("lambda_anchor > 0 needs the expert solution's finite π0 NLL")
        anchor[feasible] = anchor_rewards(nll_feasible, reference_nll)
    total = gate * (1.0 + lambda_dist * dist + lambda_div * div + lambda_anchor * anchor)
    return GroupRewards(total=total, gate=gate, dist=dist, div=div, anchor=anchor)


def split_groups(ids: list, group_size: int) -> list[slice]:
    """Slices of consecutive completions that form each prompt's group, as TRL lays them out
    (a prompt's K completions are consecutive). Raises if a group is split or mixed, which
    happens when a process holds only part of a group (trl issue 3896)."""
    if len(ids) % group_size:
        raise RuntimeError(
            f"reward function got {len(ids)} completions, not a multiple of num_generations="
            f"{group_size}: a prompt's group is split across processes. Keep "
            "per_device_train_batch_size a multiple of num_generations.")
    groups = []
    for start in range(0, len(ids), group_size):
        chunk = ids[start:start + group_size]
        if any(i != chunk[0] for i in chunk):
            raise RuntimeError(f"completions {start}..{start + group_size - 1} mix questions "
                               f"{sorted(set(map(str, chunk)))}: groups are not contiguous")
        groups.append(slice(start, start + group_size))
    return groups
