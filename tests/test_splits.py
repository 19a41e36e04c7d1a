import pytest

from rlrewrite.config import SplitSizes
from rlrewrite.data.splits import draw_splits, normalise_question
from rlrewrite.jsonl import DataError


def _records(questions):
    return [{"id": str(i), "question": q, "solution": "#### 1", "answer": "1"}
            for i, q in enumerate(questions)]


def test_normalise_question_ignores_case_space_punctuation():
    assert normalise_question("  What is 2+2?\n") == normalise_question("what is 2 + 2")


def test_disjoint_splits_drop_test_collisions():
    train = _records(["q1", "Q1!", "q2", "q3", "q4", "q5"])
    test = _records(["q1"])
    splits = draw_splits(train, test, SplitSizes(sft=2, rl=2, test=1), rl_shares_sft=False)
    assert splits.collisions_dropped == 2
    assert [r["question"] for r in splits.sft] == ["q2", "q3"]
    assert [r["question"] for r in splits.rl] == ["q4", "q5"]


def test_test_carved_from_head_of_pool_when_no_test_stream():
    pool = _records(["t", "a", "b", "T.", "c"])
    splits = draw_splits(pool, None, SplitSizes(sft=2, rl=1, test=1), rl_shares_sft=False)
    assert [r["question"] for r in splits.test] == ["t"]
    assert [r["question"] for r in splits.sft + splits.rl] == ["a", "b", "c"]
    assert splits.collisions_dropped == 1


def test_rl_shares_sft():
    splits = draw_splits(_records(["t", "a", "b", "c"]), None,
                         SplitSizes(sft=2, rl=3, test=1), rl_shares_sft=True)
    assert [r["question"] for r in splits.sft] == ["a", "b"]
    assert [r["question"] for r in splits.rl] == ["a", "b", "c"]


def test_too_small_source_is_an_error():
    with pytest.raises(DataError, match="data.sizes: sft\\+rl need 4"):
        draw_splits(_records(["t", "a", "b"]), None, SplitSizes(sft=2, rl=2, test=1), False)
    with pytest.raises(DataError, match="data.sizes.test"):
        draw_splits(_records(["a"]), _records([]), SplitSizes(sft=1, rl=1, test=1), False)
