"""lm-eval on the tiny model: the downstream math task, the quiz tasks, the offline standard
benchmarks, comparison with paired intervals, and flips."""

import pytest
from conftest import REPO

from rlrewrite.config import load_params
from rlrewrite.evaluation.harness import (
    DOWNSTREAM_TASK,
    EvalError,
    compare,
    downstream_record,
    evaluate_model,
    family,
    flips,
    general_tasks,
    gold_logprob,
    paired_items,
)
from rlrewrite.evaluation.quiz_tasks import write_quiz_tasks
from rlrewrite.evaluation.solution_nll import solution_nll
from rlrewrite.evaluation.standard_tasks import BENCHMARKS, write_samples
from rlrewrite.jsonl import write_jsonl

TEST = [{"id": f"t{i}", "question": f"What is {i} + {i}?", "solution": f"#### {2 * i}",
         "answer": str(2 * i)} for i in range(3)]
QUIZ = [{"id": f"q{i}", "question": f"Capital of X{i}?", "choices": ["a", "b", "c", "d"],
         "gold": i % 4, "answer": "abcd"[i % 4]} for i in range(3)]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # task data paths are relative to the repository root
    write_jsonl("data/prepared/test.jsonl", TEST)
    write_jsonl("data/benchmarks/quiz_x.jsonl", QUIZ)
    (tmp_path / "data/benchmarks/tasks").mkdir()
    write_quiz_tasks(tmp_path / "data/benchmarks/tasks", "data/benchmarks/quiz_x.jsonl", "x", 4)
    return tmp_path


def eval_cfg(**changes):
    base = load_params(REPO / "params.yaml").evaluate
    return base.model_copy(update={"batch_size": 4, "limit": None, **changes})


def test_general_tasks_follow_variants_and_online_names():
    bench = load_params(REPO / "params.yaml").benchmarks.model_copy(
        update={"standard": {"piqa": 5}, "quiz_tasks": ["x"], "lm_eval_tasks": ["mmlu"]})
    assert general_tasks(bench, eval_cfg(quiz_variants=["mc", "gen"])) == [
        "std_piqa", "quiz_x", "quiz_x_gen", "mmlu"]
    assert general_tasks(bench, eval_cfg(quiz_variants=["gen"])) == ["std_piqa", "quiz_x_gen", "mmlu"]


@pytest.mark.slow
def test_evaluate_model_scores_every_item(workdir, tiny_model_dir):
    scores = evaluate_model(tiny_model_dir, [DOWNSTREAM_TASK, "quiz_x", "quiz_x_gen"],
                            eval_cfg(), seed=0, dtype="float32")
    assert scores[DOWNSTREAM_TASK]["metric"] == "math_equiv"
    assert scores["quiz_x"]["metric"] == "acc" and scores["quiz_x_gen"]["metric"] == "exact_match"
    for task, result in scores.items():
        assert set(result["items"]) == {"0", "1", "2"}
        assert result["score"] == pytest.approx(sum(result["items"].values()) / 3)
    assert len(scores[DOWNSTREAM_TASK]["samples"]) == 3


def test_unknown_task_and_missing_model(workdir, tiny_model_dir):
    with pytest.raises(EvalError, match="does not know task"):
        evaluate_model(tiny_model_dir, ["no_such_task_xyz"], eval_cfg(), 0, "float32")
    with pytest.raises(EvalError, match="no model"):
        evaluate_model(workdir / "absent", [DOWNSTREAM_TASK], eval_cfg(), 0, "float32")
    with pytest.raises(EvalError, match="no adapter"):
        evaluate_model(tiny_model_dir, [DOWNSTREAM_TASK], eval_cfg(), 0, "float32",
                       adapter_dir=workdir / "absent")


def test_math_equivalence_hook():
    import importlib.util

    from rlrewrite.evaluation.harness import TASK_DIR

    spec = importlib.util.spec_from_file_location("m", TASK_DIR / "math_equivalence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.process_results({"answer": "12"}, ["so \\boxed{12.0}"]) == {"math_equiv": 1.0}
    assert module.process_results({"answer": "12"}, ["I think 13"]) == {"math_equiv": 0.0}


def test_flips_and_compare_weight_forgetting_by_items():
    assert flips({"0": 1, "1": 0, "2": 1}, {"0": 0, "1": 1, "2": 1}) == {"lost": 1, "gained": 1}
    base = {DOWNSTREAM_TASK: {"score": 0.5, "items": {"0": 0, "1": 1}},
            "quiz_x": {"score": 1.0, "items": {"0": 1, "1": 1, "2": 1, "3": 1}},
            "std_y": {"score": 0.0, "items": {"0": 0}}}
    tuned = {DOWNSTREAM_TASK: {"score": 1.0, "items": {"0": 1, "1": 1}},
             "quiz_x": {"score": 0.5, "items": {"0": 0, "1": 1, "2": 0, "3": 1}},
             "std_y": {"score": 1.0, "items": {"0": 1}}}
    result = compare(base, tuned, ["quiz_x", "std_y"])
    down = result["downstream"]
    assert (down["base"], down["tuned"], down["gain"], down["items"]) == (0.5, 1.0, 0.5, 2)
    assert down["ci95_low"] <= 0.5 <= down["ci95_high"]
    assert result["general"]["quiz_x"]["forgetting"] == pytest.approx(0.5)
    assert result["general"]["std_y"]["forgetting"] == pytest.approx(-1.0)
    # item-weighted: (2 lost of 4 quiz items - 1 gained std item) / 5, not the task mean -0.25
    assert result["forgetting_mean"] == pytest.approx(0.2)
    assert result["forgetting"]["items"] == 5
    assert result["forgetting"]["ci95_low"] < 0.2 < result["forgetting"]["ci95_high"]
    assert result["families"]["quiz"]["forgetting"] == pytest.approx(0.5)
    assert result["families"]["standard"]["forgetting"] == pytest.approx(-1.0)
    assert result["flips"]["quiz_x"] == {"lost": 2, "gained": 0}
    assert result["flips"][DOWNSTREAM_TASK] == {"lost": 0, "gained": 1}


def test_forgetting_interval_narrows_with_items():
    def forgetting(n):
        base = {DOWNSTREAM_TASK: {"score": 0, "items": {"0": 0}},
                "quiz_x": {"score": 0, "items": {str(i): float(i % 2) for i in range(n)}}}
        tuned = {DOWNSTREAM_TASK: {"score": 0, "items": {"0": 0}},
                 "quiz_x": {"score": 0, "items": {str(i): float(i % 4 == 1) for i in range(n)}}}
        f = compare(base, tuned, ["quiz_x"])["forgetting"]
        return f["ci95_high"] - f["ci95_low"]
    assert forgetting(400) < forgetting(40) / 2


def test_standard_benchmarks_sample_deterministically_from_the_packaged_data(tmp_path):
    sizes = {name: 7 for name in BENCHMARKS}
    assert write_samples(sizes, seed=3, out_dir=tmp_path / "a") == sizes
    write_samples(sizes, seed=3, out_dir=tmp_path / "b")
    write_samples(sizes, seed=4, out_dir=tmp_path / "c")
    for name in BENCHMARKS:
        a = (tmp_path / "a" / f"{name}.jsonl").read_text()
        assert a == (tmp_path / "b" / f"{name}.jsonl").read_text()
        assert a != (tmp_path / "c" / f"{name}.jsonl").read_text()
    assert '"label": 0' in (tmp_path / "a/piqa.jsonl").read_text() or \
        '"label": 1' in (tmp_path / "a/piqa.jsonl").read_text()
    with pytest.raises(ValueError, match="benchmarks.standard: unknown benchmark"):
        write_samples({"hellaswagg": 3}, seed=0, out_dir=tmp_path / "d")


@pytest.mark.slow
def test_standard_benchmarks_run_under_the_official_task_configs(workdir, tiny_model_dir):
    write_samples({"piqa": 4, "lambada_openai": 3}, seed=0)
    scores = evaluate_model(tiny_model_dir, ["std_piqa", "std_lambada_openai", "quiz_x"],
                            eval_cfg(), seed=0, dtype="float32")
    assert set(scores["std_piqa"]["items"]) == {"0", "1", "2", "3"}
    assert set(scores["std_lambada_openai"]["items"]) == {"0", "1", "2"}
    # lm-eval's own piqa config: two options per item, the official prompt, no chat template
    sample = scores["std_piqa"]["samples"][0]
    assert len(sample["response"]) == 2
    assert scores["std_lambada_openai"]["samples"][0]["target"].startswith(" ")


@pytest.mark.slow
def test_option_loglikelihoods_agree_with_accuracy_and_plain_quizzes_skip_the_template(
        workdir, tiny_model_dir):
    write_samples({"piqa": 4, "lambada_openai": 3}, seed=0)
    tasks = ["std_piqa", "std_lambada_openai", "quiz_x", "quiz_x_plain"]
    scores = evaluate_model(tiny_model_dir, tasks, eval_cfg(), seed=0, dtype="float32")
    for task in ("std_piqa", "quiz_x", "quiz_x_plain"):
        for doc, opt in scores[task]["options"].items():
            # lm-eval's acc is the argmax of these very log-likelihoods at this gold index
            best = max(range(len(opt["ll"])), key=opt["ll"].__getitem__)
            assert scores[task]["items"][doc] == float(best == opt["gold"])
            assert scores[task]["logp"][doc] == pytest.approx(gold_logprob(opt), abs=1e-4)
            assert scores[task]["logp"][doc] <= 0
    assert [o["gold"] for o in scores["quiz_x"]["options"].values()] == [q["gold"] for q in QUIZ]
    lambada = scores["std_lambada_openai"]["options"]["0"]
    assert len(lambada["ll"]) == 1 and scores["std_lambada_openai"]["logp"]["0"] == lambada["ll"][0]
    # the same items and options, scored after a chat-template user turn or a bare prompt (whose
    # options lm-eval opens with its target delimiter, a space)
    chat, plain = scores["quiz_x"]["options"]["0"], scores["quiz_x_plain"]["options"]["0"]
    assert chat["gold"] == plain["gold"] and chat["ll"] != plain["ll"]
    assert [c + 1 for c in chat["chars"]] == plain["chars"]
    assert (family("quiz_x"), family("quiz_x_plain"), family("std_piqa")) == (
        "quiz", "quiz_plain", "standard")
    paired = paired_items(scores, scores, tasks)["tasks"]["quiz_x_plain"]
    assert paired["base_logp"] == paired["tuned_logp"] and len(paired["base_ll"]) == 3


def test_gold_logprob_is_the_log_softmax_at_the_gold():
    import math

    assert gold_logprob({"ll": [-1.0, -1.0], "gold": 1}) == pytest.approx(math.log(0.5))
    assert gold_logprob({"ll": [-2.0, -1.0, -3.0], "gold": 1}) == pytest.approx(
        -1.0 - math.log(math.exp(-2) + math.exp(-1) + math.exp(-3)))
    assert gold_logprob({"ll": [-4.5], "gold": 0}) == -4.5


def test_gold_solution_nll_and_downstream_record(workdir, tiny_model_dir):
    questions, solutions = [r["question"] for r in TEST], [r["solution"] for r in TEST]
    nll = solution_nll(tiny_model_dir, questions, solutions)
    assert nll.shape == (3,) and (nll > 0).all()
    # a random tiny model is near-uniform over its vocabulary: about ln(V) nats per token
    assert abs(nll.mean() - 10.8) < 1.5
    from transformers import AutoTokenizer

    scores = {DOWNSTREAM_TASK: {"samples": [{"response": "so 2 + 2 = 4"}, {"response": "no idea"},
                                            {"response": "x " * 400}]}}
    record = downstream_record(scores, TEST, list(nll), AutoTokenizer.from_pretrained(tiny_model_dir))
    assert record["no_answer"] == pytest.approx(2 / 3, abs=1e-4)
    assert record["truncated"] == pytest.approx(1 / 3, abs=1e-4)
    assert set(record["gold_nll"]) == {"0", "1", "2"}
