"""The gate: intermediate results, the reasoning rule, the judge's verdict and the labelled set."""

from pathlib import Path

import numpy as np
import pytest
import torch

from rlrewrite.jsonl import read_jsonl
from rlrewrite.reward.gate import (
    Gate,
    ReasoningRule,
    intermediate_results,
    is_answer_only,
    numbers_in,
)
from rlrewrite.reward.scoring import BaseModelScorer

LABELLED = Path(__file__).parent / "data" / "judge_labelled.jsonl"
SOLUTION = ("The landscaper works 7 days/week * 4 weeks/month = 28 days/month\n"
            "He earns $55/day * 28 days/month = $1,540/month\n"
            "Every year he earns $1540/month * 12 months/year = $18480\n#### 18480")
QUESTION = "Works 4 weeks a month, 7 days a week, paid $55 a day. Earnings in a year?"


def test_intermediate_results_are_the_computed_values_not_the_givens_or_the_answer():
    assert intermediate_results(SOLUTION, QUESTION, "18480") == {"28", "1540"}
    assert numbers_in("It costs $1,200.50, or 1200.5 and 3.0") == {"1200.5", "3"}
    # GSM8K calculator annotations repeat the result and are ignored
    assert intermediate_results("2 * 3 = <<2*3=6>>6 apples\n#### 6", "2 and 3", "6") == set()


def test_reasoning_rule_passes_full_rewrites_and_refuses_answer_only_ones():
    rule = ReasoningRule(min_step_share=0.5, min_length_ratio=0.5)
    full = ("He works 7 times 4, which is 28 days each month. At $55 a day that is $1540 a "
            "month, and over 12 months it comes to $18480.\n$\\boxed{18480}$")
    assert rule.keeps_reasoning(full, SOLUTION, QUESTION, "18480")
    assert not rule.keeps_reasoning("The answer is $\\boxed{18480}$.", SOLUTION, QUESTION, "18480")
    # states the steps but far too briefly for the length floor
    assert not rule.keeps_reasoning("28, 1540, \\boxed{18480}", SOLUTION, QUESTION, "18480")
    assert ReasoningRule(enabled=False).keeps_reasoning("\\boxed{18480}", SOLUTION, QUESTION, "18480")
    assert is_answer_only("The answer is 18480.", SOLUTION, QUESTION, "18480")
    assert not is_answer_only(full, SOLUTION, QUESTION, "18480")


def test_gate_checks_completeness_answer_and_reasoning_separately():
    full = ("He works 7 times 4, which is 28 days each month. At $55 a day that is $1540 a "
            "month, and over 12 months it comes to $18480.\n$\\boxed{18480}$")
    texts = [full, full, "The answer is \\boxed{18480}.", full.replace("18480", "18000")]
    result = Gate(ReasoningRule())(texts, [QUESTION] * 4, ["18480"] * 4, [SOLUTION] * 4,
                                   truncated=[False, True, False, False])
    assert result.passed.tolist() == [True, False, False, False]
    assert result.complete.tolist() == [True, False, True, True]
    assert result.answer.tolist() == [True, False, True, False]
    assert result.reasoning.tolist() == [True, True, False, True]
    assert np.isnan(result.judge).all()


class FixedNextToken(torch.nn.Module):
    """A stand-in π0 whose next-token distribution is the same fixed one at every position."""

    def __init__(self, vocab_size: int, probabilities: dict[int, float]):
        super().__init__()
        probs = torch.full((vocab_size,), 1e-9)
        for token, p in probabilities.items():
            probs[token] = p
        self.logits = torch.nn.Parameter(probs.log(), requires_grad=False)

    def forward(self, input_ids, attention_mask=None, **_):
        class Out:
            logits = self.logits.expand(*input_ids.shape, -1)
        return Out()


def _ids(tokenizer, word):
    return tokenizer(word, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("chat", [False, True])
def test_judge_compares_the_yes_family_with_the_no_family(real_tokenizer, chat):
    """SmolLM2 splits "YES" into "Y" + "ES". With P(Y)=0.30, P(Yes)=0.25 and P(NO)=0.40 the
    YES family holds 0.55 against 0.40: the verdict is YES. The old judge compared the token
    "Y" (0.30) with "NO" (0.40) and said NO."""
    tok = real_tokenizer
    assert len(_ids(tok, "YES")) == 2  # the tokenizer fact the old code missed
    model = FixedNextToken(len(tok), {_ids(tok, "YES")[0]: 0.30, _ids(tok, "Yes")[0]: 0.25,
                                      _ids(tok, "NO")[0]: 0.40, _ids(tok, "the")[0]: 0.05})
    scorer = BaseModelScorer(model, tok, judge_template="{question} {answer} {candidate} Decision:",
                             judge_chat=chat)
    p_yes = scorer.judge_yes_probability(["q", "q2"], ["1", "2"], ["c", "longer candidate"])
    np.testing.assert_allclose(p_yes, 0.55 / 0.95, rtol=1e-4)
    assert scorer.judge(["q"], ["1"], ["c"]).tolist() == [True]

    lower_no = FixedNextToken(len(tok), {_ids(tok, "YES")[0]: 0.30, _ids(tok, " no")[0]: 0.20,
                                         _ids(tok, "No")[0]: 0.20})
    scorer.model = lower_no  # 0.30 against 0.40 spread over two NO forms the old code ignored
    assert scorer.judge(["q"], ["1"], ["c"]).tolist() == [False]


def test_labelled_set_separates_full_from_answer_only_rewrites_by_the_rule():
    """The labelled π0 rewrites (perf/judge_accuracy.py): the default rule refuses every
    answer-only one and keeps at least 90% of the full ones."""
    rows = read_jsonl(LABELLED)
    kinds = {k: [r for r in rows if r["kind"] == k] for k in ("full", "answer_only", "wrong_steps")}
    assert len(rows) >= 60 and all(kinds.values())
    rule = ReasoningRule()

    def pass_rate(kind):
        return np.mean([rule.keeps_reasoning(r["candidate"], r["solution"], r["question"],
                                             r["answer"]) for r in kinds[kind]])

    assert pass_rate("answer_only") == 0.0
    assert pass_rate("full") >= 0.9
    assert all(not r["label"] for r in kinds["answer_only"] + kinds["wrong_steps"])


def test_prompt_files_keep_the_authors_instructions():
    """The rewrite prompt asks for a clear step-by-step explanation, the judge is the authors'
    strict verifier (docs/method.md); the earlier files had dropped both."""
    repo = Path(__file__).resolve().parents[1]
    rewrite = (repo / "data/prompts/rewrite.txt").read_text()
    judge = (repo / "data/prompts/judge.txt").read_text()
    assert "Keep the explanation clear and step by step." in rewrite
    assert "do NOT copy it verbatim" in rewrite and "\\boxed{" in rewrite
    assert judge.startswith("You are a strict math solution verifier.")
    assert "Reply with ONLY one token: YES or NO." in judge and judge.rstrip().endswith("Decision:")
