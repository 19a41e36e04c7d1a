"""The TRL-facing reward on a real (tiny) π0: gating, scoring only feasible rewrites, groups."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlrewrite.reward.gate import Gate, ReasoningRule
from rlrewrite.reward.grpo_reward import RewriteReward
from rlrewrite.reward.scoring import BaseModelScorer


class RecordingScorer(BaseModelScorer):
    """The real scorer, remembering which texts it was asked to score."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.nll_texts, self.embedded, self.judged = [], [], []

    def qa_nll(self, questions, texts):
        self.nll_texts.extend(texts)
        return super().qa_nll(questions, texts)

    def embed(self, texts):
        self.embedded.extend(texts)
        return super().embed(texts)

    def judge(self, questions, answers, candidates):
        self.judged.extend(candidates)
        return super().judge(questions, answers, candidates)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return model, tokenizer


EOS = 0  # the end-of-turn id these tests give the reward


def _reward(tiny, k=3, judge=False, lambda_div=0.5, rule=ReasoningRule(enabled=False),
            truncated="fail", lambda_anchor=0.0):
    model, tokenizer = tiny
    scorer = RecordingScorer(model, tokenizer, judge_template=(
        "Q {question} A {answer} C {candidate} YES or NO?" if judge else None), batch_size=2)
    gate = Gate(rule, scorer if judge else None)
    return RewriteReward(gate, scorer, scorer, k, 0.35, lambda_div, {EOS}, truncated,
                         lambda_anchor=lambda_anchor), scorer


def _messages(text):
    return [{"role": "assistant", "content": text}]


def test_gate_zeroes_infeasible_and_skips_their_scoring(tiny):
    reward, scorer = _reward(tiny)
    completions = ["So \\boxed{12}.", "I think \\boxed{13}.", "", "We get 7.", "7", "\\boxed{8}"]
    rewards = reward(prompts=[_messages("p")] * 6, completions=[_messages(c) for c in completions],
                     question=["q1"] * 3 + ["q2"] * 3, answer=["12"] * 3 + ["7"] * 3,
                     solution=["s"] * 6, id=["a"] * 3 + ["b"] * 3)
    assert rewards[1] == rewards[2] == rewards[5] == 0.0
    # group a: one feasible rewrite -> r_dist 0.5, no diversity -> 1 + 0.35 * 0.5
    assert rewards[0] == pytest.approx(1 + 0.35 * 0.5)
    # group b: two feasible -> both above 1
    assert rewards[3] > 1 and rewards[4] > 1
    # the feasible rewrites, and each group's expert solution once (the reference of the anchor
    # term and of the qa_nll_vs_expert step metric)
    assert sorted(scorer.nll_texts) == sorted(["So \\boxed{12}.", "We get 7.", "7", "s", "s"])
    assert sorted(scorer.embedded) == sorted(["So \\boxed{12}.", "We get 7.", "7"])


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_truncation_is_decided_by_the_end_token(tiny, policy):
    """A rollout is truncated when it lacks the end-of-turn token, whatever its length: one that
    ends with it at exactly the cap ([1, 2, 3, EOS] under a 4-token cap) is complete; the old
    code compared the length with the cap and failed it. A truncated rollout scores 0 (`fail`)
    or None (`skip`: TRL leaves it out of the group's statistics)."""
    reward, _ = _reward(tiny, k=3, truncated=policy)
    rewards = reward(prompts=["p"] * 3, completions=["\\boxed{5}", "\\boxed{5}", "\\boxed{5} and"],
                     completion_ids=[[1, 2, 3, EOS], [1, EOS], [1, 2, 3, 4]],
                     question=["q"] * 3, answer=["5"] * 3, solution=["s"] * 3, id=["x"] * 3)
    assert rewards[2] == (0.0 if policy == "fail" else None)
    assert rewards[0] > 1 and rewards[1] > 1


def test_a_step_without_feasible_rewrites_logs_nan_not_zero(tiny):
    reward, _ = _reward(tiny, k=2)
    logged = {}
    reward(prompts=["p", "p"], completions=["\\boxed{1}", "\\boxed{2}"], question=["q", "q"],
           answer=["5", "5"], solution=["s", "s"], id=["x", "x"],
           log_metric=lambda name, value: logged.__setitem__(name, value))
    assert logged["rewrite/gate_pass_rate"] == 0.0
    for name in ("rewrite/qa_nll_feasible_mean", "rewrite/r_div_feasible_mean",
                 "rewrite/qa_nll_group_spread", "rewrite/judge_pass_rate",
                 "rewrite/qa_nll_vs_expert", "rewrite/r_anchor_feasible_mean"):
        assert np.isnan(logged[name]), name


def test_answer_only_rewrites_fail_the_reasoning_rule_inside_the_reward(tiny):
    reward, _ = _reward(tiny, k=2, rule=ReasoningRule())
    solution = "She buys 3 * 4 = 12 apples.\nThen 12 + 5 = 17 apples.\n#### 17"
    full = "First, 3 bags of 4 apples make 12 apples. Adding the 5 extra apples gives 17 apples. \\boxed{17}"
    logged = {}
    rewards = reward(prompts=["p", "p"], completions=[full, "The answer is \\boxed{17}."],
                     question=["3 bags of 4 apples and 5 more?"] * 2, answer=["17", "17"],
                     solution=[solution] * 2, id=["x", "x"],
                     log_metric=lambda name, value: logged.__setitem__(name, value))
    assert rewards[0] > 1 and rewards[1] == 0.0
    assert logged["rewrite/answer_pass_rate"] == 1.0 and logged["rewrite/gate_pass_rate"] == 0.5
    assert logged["rewrite/answer_only_share"] == 0.5


def test_judge_can_only_remove_rewrites_from_the_feasible_set(tiny):
    reward, scorer = _reward(tiny, k=2, judge=True)
    out = reward.score(["\\boxed{5}", "\\boxed{6}"], ["q", "q"], ["5", "5"], ["s", "s"], ["x", "x"])
    assert scorer.judged == ["\\boxed{5}"]  # only gate-passing rewrites are judged
    assert out["gate"][1] == 0 and np.isnan(out["checks"].judge[1])


def test_whole_groups_on_two_processes_get_the_single_process_rewards(tiny):
    """What each process computes under `launch.processes: 2` (questions_per_device whole groups
    each) equals the single-process rewards for the same completions."""
    reward, _ = _reward(tiny, k=3)
    texts = ["So \\boxed{12}.", "Then 12, \\boxed{12}", "\\boxed{13}",
             "We get 7.", "7", "Adding: 3 + 4 = 7"]
    batch = dict(prompts=["p"] * 6, completions=texts, question=["q1"] * 3 + ["q2"] * 3,
                 answer=["12"] * 3 + ["7"] * 3, solution=["s"] * 6, id=["a"] * 3 + ["b"] * 3)
    together = reward(**batch)
    halves = [reward(**{k: v[i:i + 3] for k, v in batch.items()}) for i in (0, 3)]
    assert halves[0] + halves[1] == pytest.approx(together, abs=1e-9)
    assert len(set(together[3:5])) == 2  # group b's two feasible rewrites are told apart


def test_group_split_across_processes_is_refused(tiny):
    reward, _ = _reward(tiny, k=3)
    with pytest.raises(RuntimeError, match="split across processes"):
        reward(prompts=["p"] * 4, completions=["1"] * 4, question=["q"] * 4, answer=["1"] * 4,
               solution=["s"] * 4, id=["a"] * 3 + ["b"])


def test_scorer_nll_uses_only_the_qa_prefix_and_adapter_is_disabled(tiny):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = tiny
    scorer = BaseModelScorer(model, tokenizer, batch_size=4)
    base_nll = scorer.qa_nll(["What is 2+2?", "x"], ["It is 4.", "y z"])
    assert np.all(np.isfinite(base_nll)) and np.all(base_nll > 0)
    # batching and padding do not change a row's value
    alone = scorer.qa_nll(["x"], ["y z"])
    np.testing.assert_allclose(alone, base_nll[1:], rtol=1e-4)

    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(model.name_or_path),
                                LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    peft_model.train()
    with torch.no_grad():
        adapted = peft_model(input_ids=torch.tensor([[1, 2, 3]])).logits
        with peft_model.disable_adapter():
            plain = peft_model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert not torch.allclose(adapted, plain)  # the adapter does change the outputs
    peft_scorer = BaseModelScorer(peft_model, tokenizer, batch_size=4)
    np.testing.assert_allclose(peft_scorer.qa_nll(["What is 2+2?", "x"], ["It is 4.", "y z"]),
                               base_nll, rtol=1e-4)
    assert peft_model.training  # the training mode is restored


def test_policy_embeddings_are_unit_vectors(tiny):
    model, tokenizer = tiny
    vectors = BaseModelScorer(model, tokenizer).embed(["a b c", "another text", "a b c"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], rtol=1e-5)


def test_scorer_nll_equals_the_per_token_definition(tiny):
    """Mean −log π0(target token | QA prefix, earlier target tokens), one text at a time, with
    prefixes of different lengths in one batch."""
    model, tokenizer = tiny
    questions = ["What is 2+2?", "x", "A much longer question about apples and pears, twice?"]
    texts = ["It is 4.", "y z", "Apples: 3. Pears: 5. Total 8."]
    scorer = BaseModelScorer(model, tokenizer, batch_size=3)
    expected = []
    for question, text in zip(questions, texts):
        prefix = tokenizer(scorer.qa_prefix.replace("{question}", question),
                           add_special_tokens=False)["input_ids"]
        target = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prefix + target])).logits[0].float()
        logprobs = torch.log_softmax(logits[len(prefix) - 1:-1], dim=-1)
        expected.append(-logprobs[torch.arange(len(target)), torch.tensor(target)].mean().item())
    np.testing.assert_allclose(scorer.qa_nll(questions, texts), expected, rtol=1e-4)


def test_anchor_term_pulls_toward_the_expert_solutions_likelihood(tiny):
    """λ_anchor > 0: a rewrite as likely under π0 as the expert solution gets r_anchor 0.5, a
    less likely one less; the paper's reward (λ_anchor 0) is unchanged by the reference."""
    solution = "There are 3 cows with 4 legs: 3 * 4 = 12. \\boxed{12}"
    unlikely = "zebra quantum 3 * 4 = 12 banana \\boxed{12}"
    kwargs = dict(prompts=[_messages("p")] * 2, question=["How many legs?"] * 2,
                  answer=["12"] * 2, solution=[solution] * 2, id=["a"] * 2)
    anchored, _ = _reward(tiny, k=2, lambda_div=0.0, lambda_anchor=1.0)
    # a step whose groups include one with no feasible rewrite (GRPO's usual early step)
    mixed = anchored(prompts=[_messages("p")] * 4,
                     completions=[_messages(t) for t in (solution, unlikely, "no", "none")],
                     question=["How many legs?"] * 2 + ["q2"] * 2, answer=["12"] * 2 + ["5"] * 2,
                     solution=[solution] * 2 + ["s"] * 2, id=["a", "a", "b", "b"])
    assert mixed[2] == mixed[3] == 0.0 and mixed[0] > mixed[1] > 0
    plain, _ = _reward(tiny, k=2, lambda_div=0.0)
    completions = [_messages(solution), _messages(unlikely)]
    out = anchored.score([solution, unlikely], kwargs["question"], kwargs["answer"],
                         kwargs["solution"], kwargs["id"])
    assert out["anchor"][0] == pytest.approx(0.5, abs=1e-6)
    assert out["anchor"][1] < 0.5
    assert out["nll"][1] > out["reference_nll"][0]
    with_anchor = anchored(completions=completions, **kwargs)
    without = plain(completions=completions, **kwargs)
    np.testing.assert_allclose(np.array(with_anchor) - np.array(without), out["anchor"], atol=1e-6)
