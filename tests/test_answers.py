import pytest

from rlrewrite.reward.answers import (
    extract_final_answer,
    last_boxed,
    matches_gold,
    parse_gold,
)


@pytest.mark.parametrize("solution, expected", [
    ("3 + 4 = 7\n#### 7", "7"),
    ("so the total is\n#### 1,250", "1250"),
    ("We get $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
    ("first \\boxed{3} then \\boxed{x^{2}+1}", "x^{2}+1"),
    ("no final answer here", None),
    ("cut off \\boxed{\\frac{1}{2", None),
    ("#### 12\nlater \\boxed{13}", "12"),
])
def test_extract_final_answer(solution, expected):
    assert extract_final_answer(solution) == expected


def test_last_boxed_handles_fbox():
    assert last_boxed("\\fbox{42}") == "42"


@pytest.mark.parametrize("candidate, gold, ok", [
    ("The answer is \\boxed{288}.", "288", True),
    ("So he has 288 apples in total.", "288", True),
    ("\\boxed{0.5}", "\\frac{1}{2}", True),
    ("\\boxed{289} and then 288", "288", False),
    ("", "288", False),
    ("I do not know.", "288", False),
    ("Total: 288.0", "288", True),
])
def test_matches_gold_is_math_equivalence(candidate, gold, ok):
    assert matches_gold(candidate, parse_gold(gold)) is ok


def test_gold_is_parseable():
    from rlrewrite.reward.answers import gold_is_parseable

    assert gold_is_parseable("42") and gold_is_parseable("\\frac{1}{2}")
    assert not gold_is_parseable("\\frac{") and not gold_is_parseable("")
