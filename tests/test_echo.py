"""The gate's instruction-echo check (reward/echo.py), on the project's own rewrite prompt and
rewrites of the kind the K=12 pool held."""

from pathlib import Path

from conftest import REPO

from rlrewrite.prompts import REWRITE_FIELDS, load_template
from rlrewrite.reward.echo import InstructionEcho, content_pairs
from rlrewrite.reward.gate import Gate, ReasoningRule
from rlrewrite.rewrite.metrics import reasoning_metrics

TEMPLATE = load_template(REPO / "data/prompts/rewrite.txt", REWRITE_FIELDS)
QUESTION = "Count the legs: 2 chickens and 3 dogs. How many legs are there in total?"
SOLUTION = "2 chickens have 2 * 2 = 4 legs.\n3 dogs have 3 * 4 = 12 legs.\nTotal: 4 + 12 = 16"
CLEAN = ("Each chicken has 2 legs, so 2 chickens have 2 * 2 = 4 legs. Each dog has 4 legs, so "
         "3 dogs have 3 * 4 = 12 legs. Together that is 4 + 12 = 16 legs.\n$\\boxed{16}$")
ECHOES = {
    "Existing solution:\n" + CLEAN: ["existing solution"],
    "This math word problem asks for legs. " + CLEAN: ["math word", "word problem"],
    CLEAN + "\nThe final answer in LaTeX boxed format is 16.": ["boxed format", "final answer",
                                                                "latex boxed"],
}


def test_content_pairs_skip_stop_words_and_stay_within_a_line():
    assert content_pairs("The Existing solution\nstep by step") == {("existing", "solution")}
    assert content_pairs("word\nproblem") == set()


def test_the_prompts_wording_is_found_and_a_plain_rewrite_passes():
    echo = InstructionEcho(TEMPLATE)
    assert not echo(CLEAN, QUESTION, SOLUTION)
    assert not echo(SOLUTION, QUESTION, SOLUTION)
    for text, pairs in ECHOES.items():
        assert echo.echoed(text, QUESTION, SOLUTION) == pairs, text
    # the placeholders' lines are the data, not the instruction: "Problem:" alone has no pair
    assert not echo("Problem: 16 legs in total.", QUESTION, SOLUTION)


def test_wording_the_question_itself_uses_is_not_an_echo():
    echo = InstructionEcho(TEMPLATE)
    text = "This math word problem asks for legs. " + CLEAN
    assert echo(text, QUESTION, SOLUTION)
    assert not echo(text, "A math word problem: " + QUESTION, SOLUTION)
    assert not echo(text, QUESTION, "Read the math word problem.\n" + SOLUTION)


def test_another_prompt_file_brings_its_own_wording(tmp_path: Path):
    prompt = tmp_path / "terse.txt"
    prompt.write_text("Paraphrase the reference derivation.\n{question}\n{solution}\n")
    echo = InstructionEcho(load_template(prompt, REWRITE_FIELDS))
    assert echo.pairs == {("reference", "derivation")}  # "paraphrase the": a stop word
    assert not echo("Existing solution:\n" + CLEAN, QUESTION, SOLUTION)
    assert echo("Reference derivation: " + CLEAN, QUESTION, SOLUTION)


def test_the_gate_rejects_an_echo_only_where_the_check_is_on():
    texts = [CLEAN, *ECHOES]
    n = len(texts)
    args = (texts, [QUESTION] * n, ["16"] * n, [SOLUTION] * n)
    checked = Gate(ReasoningRule(), echo=InstructionEcho(TEMPLATE))(*args)
    assert checked.echo.tolist() == [True] + [False] * (n - 1)
    assert checked.passed.tolist() == [True] + [False] * (n - 1)
    assert checked.answer.all() and checked.reasoning.all() and checked.equations.all()
    unchecked = Gate(ReasoningRule())(*args)
    assert unchecked.echo.all() and unchecked.passed.all()


def test_the_rewrite_stage_reports_the_share_of_targets_that_echo():
    echoing = next(iter(ECHOES))
    out = [{"question": QUESTION, "solution": SOLUTION, "answer": "16", "target": target,
            "rewritten": target != SOLUTION} for target in (CLEAN, echoing, SOLUTION, SOLUTION)]
    metrics = reasoning_metrics(out, InstructionEcho(TEMPLATE))
    assert metrics["instruction_echo_share"] == 0.25
    assert metrics["false_equation_share"] == 0.0
