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


def test_rl_questions_repeating_an_sft_question_are_skipped():
    """`rl_shares_sft: false` promises disjoint sft and rl questions, also when the source
    repeats one (a generator can); the sft split is left as drawn."""
    pool = _records(["t", "a", "b", "A!", "c", "a", "c.", "d"])
    splits = draw_splits(pool, None, SplitSizes(sft=2, rl=2, test=1), rl_shares_sft=False)
    assert [r["question"] for r in splits.sft] == ["a", "b"]
    assert [r["question"] for r in splits.rl] == ["c", "d"]
    assert splits.rl_duplicates_dropped == 3
    shared = draw_splits(pool, None, SplitSizes(sft=2, rl=3, test=1), rl_shares_sft=True)
    assert shared.rl_duplicates_dropped == 0


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


def _templated(pairs):
    return [{"id": str(i), "question": q, "solution": "#### 1", "answer": "1", "template": t}
            for i, (q, t) in enumerate(pairs)]


def test_test_templates_are_held_out_of_training():
    pool = _templated([("a1", "A"), ("b1", "B"), ("c1", "C"), ("a2", "A"), ("c2", "C"),
                       ("b2", "B"), ("d1", "D")])
    splits = draw_splits(pool, None, SplitSizes(sft=2, rl=1, test=2), rl_shares_sft=False,
                         test_templates=1)
    # test fills from the first template met; records of other templates passed over on the
    # way stay available to training, in order
    assert [r["question"] for r in splits.test] == ["a1", "a2"]
    assert splits.test_templates == ["A"]
    assert [r["question"] for r in splits.sft + splits.rl] == ["b1", "c1", "c2"]


def test_too_few_test_items_in_the_allowed_templates():
    pool = _templated([("a1", "A"), ("b1", "B")])
    with pytest.raises(DataError, match="in 1 templates"):
        draw_splits(pool, None, SplitSizes(sft=1, rl=1, test=2), rl_shares_sft=False,
                    test_templates=1)


@pytest.mark.parametrize("overrides", [{}, {"name": "gsm_symbolic", "options": {},
                                           "test_templates": 20}], ids=["default", "gsm_symbolic"])
def test_default_data_shares_no_template_or_question_between_test_and_training(overrides):
    """The embedded default (params.yaml `data`) and GSM-Symbolic: no template of the test
    split (leg_counting: the animals asked about; GSM-Symbolic: the generator) appears in sft
    or rl, so test measures the skill, not template recall."""
    from test_config import REPO

    from rlrewrite.config import load_params
    from rlrewrite.data.sources import open_source

    data = load_params(REPO / "params.yaml").data.model_copy(update=overrides)
    splits = draw_splits(open_source(data, data.seed), None, data.sizes, data.rl_shares_sft,
                         data.test_templates)
    training = splits.sft + splits.rl
    assert len(splits.test) == data.sizes.test and len(training) == data.sizes.sft + data.sizes.rl
    test_questions = {normalise_question(r["question"]) for r in splits.test}
    assert not test_questions & {normalise_question(r["question"]) for r in training}
    assert not ({normalise_question(r["question"]) for r in splits.sft}
                & {normalise_question(r["question"]) for r in splits.rl})
    test_templates = {r["template"] for r in splits.test}
    assert test_templates and all(r.get("template") for r in training)
    assert not test_templates & {r["template"] for r in training}
    if data.test_templates is not None:
        assert len(test_templates) <= data.test_templates
