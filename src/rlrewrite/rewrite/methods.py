"""Generate–Verify–Fallback over the `sft` split, for each method (docs/method.md, Stage 2 and Baselines).

- original: the expert solution, unchanged.
- prompt:   π0 rewrites with the fixed rewrite prompt (SDFT-style).
- self:     π0 answers the question itself (plain QA turn); where wrong, a guided rewrite.
- rl:       the trained rewriter (π0 + LoRA) rewrites with the same prompt.
- select:   one of K verified rewrites chosen by π0-likelihood (rewrite/select.py; its pool comes
            from stage rewrite-candidates).
Every method verifies with the reward's gate and falls back to the expert solution, so the output
has exactly one target per input question, in input order.
"""

from __future__ import annotations

from collections.abc import Callable

from rlrewrite.engines.completion import Completion
from rlrewrite.prompts import rewrite_prompt, user_turn

METHODS = ("original", "prompt", "self", "rl", "select")


def uses_rewriter(method: str, select_generator: str | None = None) -> bool:
    """`rl`, and `select` drawing its pool from the rewriter, rewrite with the trained rewriter;
    the stage that trains it skips the others."""
    return method == "rl" or (method == "select" and select_generator == "rl")

Generate = Callable[[list[list[dict]], str], list[Completion]]
Verify = Callable[[list[dict], list[Completion]], list[bool]]


def _result(record: dict, method: str, target: str, rewritten: bool, attempts: int) -> dict:
    return {"id": record["id"], "question": record["question"], "answer": record["answer"],
            "solution": record["solution"], "target": target, "rewritten": rewritten,
            "attempts": attempts, "method": method}


def _try_until_verified(records: list[dict], pending: list[int], make_prompt, generate: Generate,
                        verify: Verify, rounds: int, accepted: dict[int, str],
                        attempts: list[int], last: dict[int, str], desc: str) -> list[int]:
    """Up to `rounds` generation rounds over `pending`; returns those still unaccepted."""
    for round_index in range(rounds):
        if not pending:
            break
        outputs = generate([make_prompt(records[i]) for i in pending],
                           f"{desc} {round_index + 1}/{rounds}")
        verdicts = verify([records[i] for i in pending], outputs)
        still = []
        for i, output, ok in zip(pending, outputs, verdicts):
            attempts[i] += 1
            last[i] = output.text
            if ok:
                accepted[i] = output.text
            else:
                still.append(i)
        pending = still
    return pending


def rewrite_records(records: list[dict], method: str, rewrite_template: str | None,
                    generate: Generate | None, verify: Verify | None,
                    attempts_per_question: int) -> tuple[list[dict], dict[int, str]]:
    """(one output record per input record, last candidate per index for the sample table)."""
    if method not in METHODS:
        raise ValueError(f"rewrite.method: unknown method '{method}'; known: {list(METHODS)}")
    if method == "original":
        return [_result(r, method, r["solution"], False, 0) for r in records], {}
    if method == "select":
        raise ValueError("rewrite.method select chooses from a pool (rewrite/select.py), it does "
                         "not generate here")

    def make_rewrite_prompt(record):
        return rewrite_prompt(rewrite_template, record["question"], record["solution"])

    accepted: dict[int, str] = {}
    attempts = [0] * len(records)
    last: dict[int, str] = {}
    pending = list(range(len(records)))
    if method == "self":
        pending = _try_until_verified(records, pending, lambda r: user_turn(r["question"]),
                                      generate, verify, attempts_per_question, accepted, attempts,
                                      last, "self-answer")
    _try_until_verified(records, pending, make_rewrite_prompt, generate, verify,
                        attempts_per_question, accepted, attempts, last, "rewrite")
    out = [_result(r, method, accepted.get(i, r["solution"]), i in accepted, attempts[i])
           for i, r in enumerate(records)]
    return out, last


def gate_verifier(gate) -> Verify:
    """The verify step: the reward's gate (reward/gate.py) over a batch of completions."""
    def verify(batch: list[dict], completions: list[Completion]) -> list[bool]:
        checks = gate([c.text for c in completions], [r["question"] for r in batch],
                      [r["answer"] for r in batch], [r["solution"] for r in batch],
                      [c.truncated for c in completions])
        return [bool(p) for p in checks.passed]

    return verify
