"""`rewrite.method: select`: eligibility by gate and length, the three rules, the pool's figures."""

import pytest

from rlrewrite.rewrite.select import choose, eligible, pool_metrics, select_records


def cand(nll, tokens=50, passed=True, text=None):
    return {"text": text or f"t{nll}", "passed": passed, "nll": nll, "tokens": tokens}


POOL = [cand(0.9), cand(0.5, 52), cand(1.4, 48), cand(0.1, 90),  # 0.1: too long
        cand(0.05, 50, passed=False)]  # failed the gate


def test_only_gate_passing_candidates_of_matched_length_are_eligible():
    assert [c["nll"] for c in eligible(POOL, 0.15)] == [0.9, 0.5, 1.4]
    assert [c["nll"] for c in eligible(POOL, 1.0)] == [0.9, 0.5, 1.4, 0.1]
    assert eligible([cand(0.3, passed=False)], 0.15) == []
    # two passing candidates far apart: the band sits on one of them, never on neither
    assert [c["tokens"] for c in eligible([cand(0.4, 80), cand(0.6, 120)], 0.15)] == [80]


def test_rules_pick_lowest_highest_or_a_seeded_draw():
    assert choose(POOL, "low", 0.15, 0, "q1")["nll"] == 0.5
    assert choose(POOL, "high", 0.15, 0, "q1")["nll"] == 1.4
    draws = {choose(POOL, "random", 0.15, s, "q1")["nll"] for s in range(30)}
    assert draws == {0.9, 0.5, 1.4}
    assert choose(POOL, "random", 0.15, 3, "q1") == choose(POOL, "random", 0.15, 3, "q1")
    with pytest.raises(ValueError, match="rewrite.select.rule: unknown rule 'lowest'"):
        choose(POOL, "lowest", 0.15, 0, "q1")


def test_records_fall_back_to_the_expert_and_the_pool_reports_what_it_allows():
    records = [{"id": i, "question": f"q{i}", "answer": "1", "solution": f"s{i}"}
               for i in ("a", "b")]
    pool = {"a": POOL, "b": [cand(0.2, passed=False)]}
    out = select_records(records, pool, "low", 0.15, 0)
    assert [r["target"] for r in out] == ["t0.5", "sb"]
    assert [r["rewritten"] for r in out] == [True, False]
    assert out[0]["method"] == "select" and out[0]["rule"] == "low" and out[1]["attempts"] == 1
    figures = pool_metrics(records, pool, 0.15, 0)
    assert figures["pool_questions_covered"] == 1 and figures["pool_candidates"] == 6
    assert figures["pool_low_nll"] == 0.5 and figures["pool_high_nll"] == 1.4
    assert figures["pool_low_high_gap"] == pytest.approx(0.9)
    assert figures["pool_low_tokens"] == 52 and figures["pool_high_tokens"] == 48
