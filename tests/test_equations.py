"""The gate's step check: false equations found, true ones and prose left alone."""

import pytest

from rlrewrite.data.rendered import leg_counting
from rlrewrite.reward.equations import equations, false_equations
from rlrewrite.reward.gate import Gate, ReasoningRule


@pytest.mark.parametrize("text, wrong", [
    # the two false steps the issue found among accepted rl rewrites (a term dropped)
    ("spiders: 3 x 8 legs = 24\nTotal: 0 + 24 + 8 = 116\n#### 32", ["0 + 24 + 8 = 116"]),
    ("Total: 8 + 24 + 0 = 38", ["8 + 24 + 0 = 38"]),
    ("(0 + 24 + 8 = 116)", ["0 + 24 + 8 = 116"]),
    ("Total = 0 + 24 + 8 = 116 legs (all animals)", ["0 + 24 + 8 = 116"]),
    ("Total: 0 + 24 + 8 = **116**", ["0 + 24 + 8 = 116"]),
    ("Half: 7/2 = 3.5 so 3 × 8 = 25", ["3 * 8 = 25"]),
    # true steps in the forms models write them
    ("15 - 43 = -28\n-28 - 75 = -103", []),  # chain_sum's negative results
    ("- 3 spiders x 8 legs = 24 legs", []),  # a bullet, not a minus
    ("Spiders – 3 x 8 = 24", []),
    ("3 x 8 = 24 legs - 2 birds have 4 legs", []),
    ("ants: 2 x (3 + 3) legs = 12", []),
    ("1,200 + 300 = 1,500 and 10 / 4 = 2.5", []),
    ("10 / 3 = 3.33", []),  # a rounded decimal
    ("3 x 8 = 24 + 4 = 28", []),  # a running total
    ("x = 5 - 2 = 3", []),
    ("There are 3 spiders = 3 animals", []),  # no operator: a label, not arithmetic
    # not read as arithmetic, never rejected
    ("He earns $55/day * 28 days/month = $1,540/month", []),
    ("\\frac{6}{2} + 1 = 4", []),
    ("So \\(3 \\times 8 = 25\\), \\boxed{28}", ["3 * 8 = 25"]),  # LaTeX-wrapped arithmetic
    ("$24 + 4 = 28$, so \\boxed{28}", []),
    ("3^2 + 4 = 13", []),
    ("50 x 20% = 10", []),
    ("1 1/2 + 1/2 = 2", []),
    # powers are never evaluated: an irrational or astronomically large side is skipped
    ("ratio: 2 ** (1/12) = 1.06 and 3 x 8 = 25", ["3 * 8 = 25"]),
    ("9 ** 9 ** 9 = 1", []),
])
def test_false_equations(text, wrong):
    assert false_equations(text) == wrong


def test_equations_read_words_between_numbers_as_units():
    assert equations("cows: 3 cows x 4 legs each = 12 legs") == [("3 * 4", "12")]
    assert equations("There are 3 spiders and 2 x 4 = 8") == [("2 * 4", "8")]


def test_expert_solutions_state_no_false_equation():
    import reasoning_gym

    items = reasoning_gym.create_dataset("leg_counting", size=200, seed=1, min_animals=2,
                                         max_animals=4, max_instances=6)
    solutions = [leg_counting(item) for item in items]
    assert all(equations(s) for s in solutions)
    assert not [s for s in solutions if false_equations(s)]


def test_gate_rejects_a_correct_answer_reached_through_a_false_step():
    question = "How many legs do 3 spiders and 2 birds have?"
    solution = "spiders: 3 x 8 legs = 24\nbirds: 2 x 2 legs = 4\nTotal: 24 + 4 = 28\n#### 28"
    true_steps = "3 spiders x 8 legs = 24 legs. 2 birds x 2 legs = 4 legs. 24 + 4 = 28. \\boxed{28}"
    false_step = "3 spiders x 8 legs = 24 legs. 2 birds x 2 legs = 4 legs. 24 + 0 = 28. \\boxed{28}"
    texts = [true_steps, false_step]
    checked = Gate(ReasoningRule())(texts, [question] * 2, ["28"] * 2, [solution] * 2)
    assert checked.answer.tolist() == [True, True] and checked.reasoning.tolist() == [True, True]
    assert checked.equations.tolist() == [True, False]
    assert checked.passed.tolist() == [True, False]
    unchecked = Gate(ReasoningRule(reject_false_equations=False))(texts, [question] * 2,
                                                                  ["28"] * 2, [solution] * 2)
    assert unchecked.passed.tolist() == [True, True]
