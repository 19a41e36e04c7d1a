"""The gate r_task: which rewrites count as correct (docs/pipeline.md, "The gate keeps the reasoning").

One gate serves the GRPO reward and the rewrite stage's verify step, so the rewriter is trained
on exactly the check its rewrites must later pass. A rewrite passes when
1. it is complete (not truncated, not empty),
2. its final answer is equivalent to the gold one (math-verify),
3. it keeps the reasoning (our extension of the paper, `gate.reasoning`): it states at least
   `min_step_share` of the values the expert solution's steps compute, and has at least
   `min_length_ratio` of the expert solution's words. Without it, copying the reference's final
   answer passes the answer check far more often than a full 135M rewrite does, and GRPO learns
   to drop the reasoning;
4. every equation it states is true (`reject_false_equations`, reward/equations.py): a rewrite
   can reach the gold answer through "0 + 24 + 8 = 116", and SFT would train that arithmetic;
5. it does not repeat the rewrite prompt's wording (`reject_instruction_echo`,
   reward/echo.py): "Existing solution:" or "in LaTeX boxed format" in a target teaches SFT to
   write about rewriting;
6. optionally π0 judges it valid (`gate.judge`, the paper's YES/NO judge).
The judge only sees rewrites that passed 1-5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np

from rlrewrite.config import GateParams, RewriterParams
from rlrewrite.prompts import JUDGE_FIELDS, load_template
from rlrewrite.reward.answers import matches_gold, parse_gold
from rlrewrite.reward.echo import InstructionEcho
from rlrewrite.reward.equations import states_false_equation
from rlrewrite.reward.scoring import BaseModelScorer

ANSWER_ONLY_MAX_WORDS = 15  # a rewrite under this many words is answer-only whatever it states

_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?\d[\d,]*(?:\.\d+)?")
_RESULT = re.compile(r"=\s*\$?\s*([-−]?\d[\d,]*(?:\.\d+)?)")  # the value a step computes
_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations repeat each result


def _canonical(number: str) -> str | None:
    text = number.replace(",", "").replace("$", "").replace("−", "-").rstrip(".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return format(value.normalize(), "f")


def numbers_in(text: str) -> set[str]:
    """The numbers a text states, canonical (1,200 / 1200.0 / $1200 -> 1200)."""
    return {c for c in map(_canonical, _NUMBER.findall(_CALCULATOR.sub(" ", text))) if c}


def intermediate_results(solution: str, question: str, answer: str) -> set[str]:
    """The values the expert solution's steps compute: numbers right of an `=`, else every number
    it states; minus the question's numbers and the final answer, which a rewrite that skips the
    reasoning states as well."""
    body = _CALCULATOR.sub(" ", solution)
    results = {c for c in map(_canonical, _RESULT.findall(body)) if c}
    if not results:
        results = numbers_in(body)
    return results - numbers_in(question) - numbers_in(answer)


def word_count(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class ReasoningRule:
    """`gate.reasoning`: enabled, min_step_share, min_length_ratio, reject_false_equations."""

    enabled: bool = True
    min_step_share: float = 0.5
    min_length_ratio: float = 0.5
    reject_false_equations: bool = True

    def step_share(self, rewrite: str, steps: set[str]) -> float:
        """Share of the expert's intermediate results the rewrite states (1.0 when none exist)."""
        if not steps:
            return 1.0
        return len(steps & numbers_in(rewrite)) / len(steps)

    def keeps_reasoning(self, rewrite: str, solution: str, question: str, answer: str) -> bool:
        if not self.enabled:
            return True
        steps = intermediate_results(solution, question, answer)
        return (self.step_share(rewrite, steps) >= self.min_step_share
                and word_count(rewrite) >= self.min_length_ratio * word_count(solution))


def is_answer_only(rewrite: str, solution: str, question: str, answer: str) -> bool:
    """The collapse this gate must prevent: under 15 words, or none of the expert solution's
    intermediate results stated (when it has any)."""
    if word_count(rewrite) < ANSWER_ONLY_MAX_WORDS:
        return True
    steps = intermediate_results(solution, question, answer)
    return bool(steps) and not (steps & numbers_in(rewrite))


@dataclass
class GateResult:
    """Per rewrite: each check, and `passed` = all of them. `judge` is NaN where not asked."""

    complete: np.ndarray
    answer: np.ndarray
    reasoning: np.ndarray
    equations: np.ndarray  # no false equation stated (True where the check is off)
    echo: np.ndarray  # the rewrite prompt's wording not repeated (True where the check is off)
    judge: np.ndarray
    passed: np.ndarray


class Gate:
    """r_task ∈ {0, 1} for a batch of rewrites (see the module docstring)."""

    def __init__(self, rule: ReasoningRule, judge=None, echo: InstructionEcho | None = None):
        self.rule = rule
        self.judge = judge  # a BaseModelScorer, or None for no judge
        self.echo = echo  # the rewrite prompt's wording to reject, or None for no check
        self._golds: dict[str, list] = {}

    def _gold(self, answer: str) -> list:
        if answer not in self._golds:
            self._golds[answer] = parse_gold(answer)
        return self._golds[answer]

    def __call__(self, texts: list[str], questions: list[str], answers: list[str],
                 solutions: list[str], truncated: list[bool] | None = None) -> GateResult:
        n = len(texts)
        complete = np.array([bool(t.strip()) and not (truncated is not None and truncated[i])
                             for i, t in enumerate(texts)], dtype=bool)
        answer_ok = np.array([complete[i] and matches_gold(texts[i], self._gold(answers[i]))
                              for i in range(n)], dtype=bool)
        reasoning_ok = np.array([self.rule.keeps_reasoning(texts[i], solutions[i], questions[i],
                                                           answers[i]) for i in range(n)], dtype=bool)
        equations_ok = np.array([not (self.rule.reject_false_equations and complete[i]
                                      and states_false_equation(texts[i])) for i in range(n)],
                                dtype=bool)
        echo_ok = np.array([self.echo is None or not (complete[i] and self.echo(
            texts[i], questions[i], solutions[i])) for i in range(n)], dtype=bool)
        passed = complete & answer_ok & reasoning_ok & equations_ok & echo_ok
        judged = np.full(n, np.nan)
        if self.judge is not None and passed.any():
            idx = np.flatnonzero(passed)
            verdicts = self.judge.judge([questions[i] for i in idx], [answers[i] for i in idx],
                                        [texts[i] for i in idx])
            judged[idx] = verdicts.astype(float)
            passed[idx] = verdicts
        return GateResult(complete, answer_ok, reasoning_ok, equations_ok, echo_ok, judged, passed)


def build_scorer(gate: GateParams, rewriter: RewriterParams, model, tokenizer) -> BaseModelScorer:
    """π0's scorer with the judge template (when the judge is on), the QA prefix and the scoring
    batch size (`rewriter.qa_prefix`, `rewriter.scoring_batch_size`)."""
    judge_template = (load_template(gate.judge_prompt_file, JUDGE_FIELDS)
                      if gate.judge else None)
    return BaseModelScorer(model, tokenizer, rewriter.qa_prefix, judge_template,
                           rewriter.scoring_batch_size, gate.judge_chat)


def build_gate(gate: GateParams, scorer: BaseModelScorer, rewrite_template: str) -> Gate:
    """The gate both the reward and the rewrite stages use, from `gate.*`; the instruction echo
    check compares with `rewrite_template`, the loaded `rewriter.prompt_file`."""
    rule = ReasoningRule(gate.reasoning.enabled, gate.reasoning.min_step_share,
                         gate.reasoning.min_length_ratio, gate.reasoning.reject_false_equations)
    echo = InstructionEcho(rewrite_template) if gate.reject_instruction_echo else None
    return Gate(rule, scorer if gate.judge else None, echo)
