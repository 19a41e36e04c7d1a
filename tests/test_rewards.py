"""The group-level reward, with values worked out by hand (docs/method.md, Stage 1)."""

import math

import numpy as np
import pytest

from rlrewrite.reward.group_rewards import (
    alignment_rewards,
    combine,
    diversity_rewards,
    mean_pairwise_distance,
    split_groups,
)

E1, E2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_alignment_is_sigmoid_of_negative_population_zscore():
    # mean 2, population std sqrt(2/3): z = -1.2247, 0, 1.2247
    z = 1 / math.sqrt(2 / 3)
    expected = [sigmoid(z), 0.5, sigmoid(-z)]
    np.testing.assert_allclose(alignment_rewards([1.0, 2.0, 3.0]), expected, rtol=1e-5)


def test_alignment_single_feasible_and_ties_get_one_half():
    np.testing.assert_allclose(alignment_rewards([4.2]), [0.5])
    np.testing.assert_allclose(alignment_rewards([1.3, 1.3]), [0.5, 0.5])
    assert alignment_rewards([]).size == 0


def test_lower_nll_gets_higher_alignment():
    r = alignment_rewards([0.8, 2.5, 1.1])
    assert r[0] > r[2] > r[1]


def test_mean_pairwise_distance():
    # pairs (e1,e2)=0.5, (e1,e1)=0, (e2,e1)=0.5 -> 1/3
    assert mean_pairwise_distance(np.stack([E1, E2, E1])) == pytest.approx(1 / 3)
    assert mean_pairwise_distance(np.stack([E1])) == 0.0


def test_diversity_is_marginal_contribution_clipped_at_zero():
    # removing the lone e2 drops D from 1/3 to 0; removing an e1 raises it to 1/2 -> clipped 0
    np.testing.assert_allclose(diversity_rewards(np.stack([E1, E2, E1])), [0.0, 1 / 3, 0.0])
    # two orthogonal rewrites: D = 1/2, either removed leaves a singleton (D = 0)
    np.testing.assert_allclose(diversity_rewards(np.stack([E1, E2])), [0.5, 0.5])


def test_diversity_zero_for_identical_and_for_fewer_than_two():
    np.testing.assert_allclose(diversity_rewards(np.stack([E1, E1, E1])), [0, 0, 0])
    np.testing.assert_allclose(diversity_rewards(np.stack([E2])), [0])


def test_diversity_nonnegative_and_permutation_equivariant():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rewards = diversity_rewards(vectors)
    assert (rewards >= 0).all()
    perm = rng.permutation(5)
    np.testing.assert_allclose(diversity_rewards(vectors[perm]), rewards[perm])


def test_combine_gates_and_weights():
    gate = np.array([1, 0, 1, 1])
    z = 1 / math.sqrt(2 / 3)
    result = combine(gate, np.array([1.0, 2.0, 3.0]), np.stack([E1, E2, E1]),
                     lambda_dist=0.35, lambda_div=0.5)
    expected = [1 + 0.35 * sigmoid(z), 0.0, 1 + 0.35 * 0.5 + 0.5 / 3, 1 + 0.35 * sigmoid(-z)]
    np.testing.assert_allclose(result.total, expected, rtol=1e-5)
    np.testing.assert_allclose(result.dist[1], 0.0)
    np.testing.assert_allclose(result.div, [0, 0, 1 / 3, 0], atol=1e-9)


def test_combine_all_infeasible_and_no_embeddings():
    result = combine(np.zeros(3), np.array([]), None, 0.35, 0.5)
    np.testing.assert_allclose(result.total, [0, 0, 0])
    result = combine(np.array([0, 1]), np.array([2.0]), None, 0.35, 0.5)
    np.testing.assert_allclose(result.total, [0, 1 + 0.35 * 0.5])


@pytest.mark.parametrize("bad", ["nan_nll", "inf_nll", "zero_embedding", "nan_embedding"])
def test_a_rewrite_that_cannot_be_scored_is_infeasible_and_leaves_the_others_defined(bad):
    """The stated rule for degenerate scores: that rewrite gets 0, the others are scored as a
    group without it, and nothing is NaN."""
    nll = np.array([1.0, 2.0, 3.0])
    emb = np.stack([E1, E2, E1])
    if bad.endswith("nll"):
        nll[1] = np.nan if bad == "nan_nll" else np.inf
    else:
        emb[1] = 0.0 if bad == "zero_embedding" else np.nan
    result = combine(np.array([1, 1, 1]), nll, emb, lambda_dist=0.35, lambda_div=0.5)
    without = combine(np.array([1, 0, 1]), nll[[0, 2]], emb[[0, 2]], 0.35, 0.5)
    assert np.isfinite(result.total).all() and result.total[1] == 0 and result.gate[1] == 0
    np.testing.assert_allclose(result.total, without.total)


def test_combine_rejects_misaligned_inputs():
    with pytest.raises(ValueError, match="feasible"):
        combine(np.array([1, 1]), np.array([1.0]), None, 0.35, 0.5)


def test_split_groups_follows_trl_layout_and_detects_split_groups():
    assert split_groups(["a", "a", "b", "b"], 2) == [slice(0, 2), slice(2, 4)]
    with pytest.raises(RuntimeError, match="not a multiple of num_generations"):
        split_groups(["a", "a", "b"], 2)
    with pytest.raises(RuntimeError, match="mix questions"):
        split_groups(["a", "b", "b", "a"], 2)


def test_anchor_rewards_compare_each_rewrite_with_the_expert_solution():
    from rlrewrite.reward.group_rewards import ANCHOR_SCALE, anchor_rewards

    nll = np.array([1.0, 1.0 - ANCHOR_SCALE, 1.0 + ANCHOR_SCALE])
    np.testing.assert_allclose(anchor_rewards(nll, 1.0),
                               [0.5, sigmoid(1.0), sigmoid(-1.0)], rtol=1e-9)
    # a group whose every rewrite is less likely than the expert's: r_dist still pays its best
    # one 0.5 or more, r_anchor pays all of them less than 0.5
    worse = np.array([1.5, 1.6])
    result = combine(np.array([1, 1]), worse, None, 0.35, 0.0, lambda_anchor=1.0,
                     reference_nll=1.0)
    assert result.dist.max() > 0.5 and (result.anchor < 0.5).all()
    np.testing.assert_allclose(result.total, 1 + 0.35 * result.dist + result.anchor)
    with pytest.raises(ValueError, match="expert solution"):
        combine(np.array([1, 1]), worse, None, 0.35, 0.0, lambda_anchor=1.0)
    # a group without a feasible rewrite needs no reference (its expert NLL is not computed)
    empty = combine(np.zeros(2), np.array([]), None, 0.35, 0.0, lambda_anchor=1.0,
                    reference_nll=float("nan"))
    assert (empty.total == 0).all() and (empty.anchor == 0).all()
