"""`rewrite.method: select`: SFT targets chosen by π0-likelihood from a pool of verified rewrites.

The paper's mechanism is that targets more likely under π0 cause less forgetting at comparable
gain. `select` tests it directly: stage `rewrite-candidates` samples K rewrites per question
(π0 with the rewrite prompt, or the trained rewriter), keeps the gate's verdict, π0's QA-style
NLL and the length of each (the pool, data/candidates/pool.jsonl); stage `rewrite` then picks
one per question by `rewrite.select.rule`:
- low: the lowest π0 NLL (best-of-K by π0-likelihood, a method in its own right);
- high: the highest;
- random: a seeded draw.
Only candidates that passed the gate and whose length is within `length_tolerance` of the
median passing candidate's are eligible, so the three rules draw from one length-matched set
and differ only in π0-likelihood. A question with no passing candidate keeps its expert solution.
"""

from __future__ import annotations

import random
from statistics import median_low

RULES = ("low", "high", "random")


def eligible(candidates: list[dict], tolerance: float) -> list[dict]:
    """The gate-passing candidates within `tolerance` (a share) of their median token length
    (the lower median: a real candidate's, so one is always eligible)."""
    passing = [c for c in candidates if c["passed"]]
    if not passing:
        return []
    middle = median_low(c["tokens"] for c in passing)
    return [c for c in passing if abs(c["tokens"] - middle) <= tolerance * middle]


def choose(candidates: list[dict], rule: str, tolerance: float, seed: int, key: str) -> dict | None:
    """One candidate by `rule`, or None (fall back to the expert solution)."""
    if rule not in RULES:
        raise ValueError(f"rewrite.select.rule: unknown rule '{rule}'; known: {list(RULES)}")
    pool = eligible(candidates, tolerance)
    if not pool:
        return None
    if rule == "low":
        return min(pool, key=lambda c: c["nll"])
    if rule == "high":
        return max(pool, key=lambda c: c["nll"])
    return random.Random(f"{seed}:{key}").choice(pool)


def select_records(records: list[dict], pool: dict[str, list[dict]], rule: str,
                   tolerance: float, seed: int) -> list[dict]:
    """One output record per input record (the rewrite stage's schema), in input order."""
    out = []
    for record in records:
        candidates = pool.get(record["id"], [])
        chosen = choose(candidates, rule, tolerance, seed, record["id"])
        out.append({"id": record["id"], "question": record["question"],
                    "answer": record["answer"], "solution": record["solution"],
                    "target": chosen["text"] if chosen else record["solution"],
                    "rewritten": chosen is not None, "attempts": len(candidates),
                    "method": "select", "rule": rule,
                    "target_nll": chosen["nll"] if chosen else None})
    return out


def pool_metrics(records: list[dict], pool: dict[str, list[dict]], tolerance: float,
                 seed: int) -> dict:
    """What the pool allows, for every rule at once: each rule's mean chosen NLL and token total
    over the questions where a candidate is eligible, and the LOW−HIGH gap."""
    out = {"pool_candidates": sum(len(v) for v in pool.values()),
           "pool_pass_rate": round(sum(c["passed"] for v in pool.values() for c in v)
                                   / max(1, sum(len(v) for v in pool.values())), 4)}
    chosen = {rule: [choose(pool.get(r["id"], []), rule, tolerance, seed, r["id"])
                     for r in records] for rule in RULES}
    covered = [i for i, c in enumerate(chosen["low"]) if c is not None]
    out["pool_questions_covered"] = len(covered)
    for rule, picks in chosen.items():
        picked = [picks[i] for i in covered]
        out[f"pool_{rule}_nll"] = (round(sum(c["nll"] for c in picked) / len(picked), 4)
                                   if picked else None)
        out[f"pool_{rule}_tokens"] = sum(c["tokens"] for c in picked)
    if covered:
        out["pool_low_high_gap"] = round(out["pool_high_nll"] - out["pool_low_nll"], 4)
    return out
