"""Generate–Verify–Fallback: one target per question, in order, for every method."""

import pytest

from rlrewrite.engines.completion import Completion
from rlrewrite.rewrite.methods import METHODS, rewrite_records
from rlrewrite.rewrite.metrics import distinct_n, self_bleu

RECORDS = [{"id": f"q{i}", "question": f"What is {i}+{i}?", "solution": f"#### {2 * i}",
            "answer": str(2 * i)} for i in range(6)]
TEMPLATE = "Rewrite {solution} for {question}"


class ScriptedModel:
    """Stands in for the generation engine: answers correctly for even question numbers on the
    plain QA turn and for multiples of 3 on rewrite turns; records every prompt."""

    def __init__(self):
        self.calls = []

    def __call__(self, conversations, desc):
        self.calls.append((desc, len(conversations)))
        outputs = []
        for conversation in conversations:
            content = conversation[0]["content"]
            n = int(content.split("What is ")[1].split("+")[0])
            good = (n % 3 == 0) if content.startswith("Rewrite") else (n % 2 == 0)
            outputs.append(Completion(f"so \\boxed{{{2 * n if good else -1}}}", False))
        return outputs


def verify(batch, outputs):
    return [f"\\boxed{{{r['answer']}}}" in o.text for r, o in zip(batch, outputs)]


@pytest.mark.parametrize("method", [m for m in METHODS if m != "select"])  # select: test_select
def test_every_method_keeps_one_record_per_question_in_order(method):
    out, _ = rewrite_records(RECORDS, method, TEMPLATE, ScriptedModel(), verify, attempts_per_question=2)
    assert [r["id"] for r in out] == [r["id"] for r in RECORDS]
    assert all(r["method"] == method for r in out)
    for record, result in zip(RECORDS, out):
        assert result["solution"] == record["solution"]
        if not result["rewritten"]:
            assert result["target"] == record["solution"]  # fallback to the expert solution


def test_original_loads_and_generates_nothing():
    out, _ = rewrite_records(RECORDS, "original", None, None, None, 1)
    assert all(not r["rewritten"] and r["attempts"] == 0 for r in out)


def test_prompt_and_rl_retry_only_failures_then_fall_back():
    model = ScriptedModel()
    out, last = rewrite_records(RECORDS, "rl", TEMPLATE, model, verify, attempts_per_question=2)
    accepted = [r["rewritten"] for r in out]
    assert accepted == [True, False, False, True, False, False]
    assert [r["attempts"] for r in out] == [1, 2, 2, 1, 2, 2]
    assert model.calls == [("rewrite 1/2", 6), ("rewrite 2/2", 4)]
    assert out[0]["target"] == "so \\boxed{0}" and last[1] == "so \\boxed{-1}"


def test_self_keeps_own_answer_then_guided_rewrite_then_fallback():
    model = ScriptedModel()
    out, _ = rewrite_records(RECORDS, "self", TEMPLATE, model, verify, attempts_per_question=1)
    # even n: own answer; odd multiple of 3 (n=3): guided rewrite; others fall back
    assert [r["rewritten"] for r in out] == [True, False, True, True, True, False]
    assert [r["attempts"] for r in out] == [1, 2, 1, 2, 1, 2]
    assert model.calls == [("self-answer 1/1", 6), ("rewrite 1/1", 3)]


def test_unknown_method():
    with pytest.raises(ValueError, match="rewrite.method"):
        rewrite_records(RECORDS, "magic", TEMPLATE, None, None, 1)


def test_diversity_measures():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b", "a b"], 2) == 0.5
    same = self_bleu(["the cat sat on the mat"] * 4, 10, seed=0)
    varied = self_bleu(["the cat sat on the mat", "a dog ran in a park", "fish swim deep",
                        "birds fly south"], 10, seed=0)
    assert same == pytest.approx(100.0) and varied < 20
