"""lm-eval on the tiny model: the downstream math task, the quiz tasks, comparison and flips."""

import pytest
from test_config import REPO

from rlrewrite.config import load_params
from rlrewrite.evaluation.harness import (
    DOWNSTREAM_TASK,
    EvalError,
    compare,
    evaluate_model,
    flips,
    general_tasks,
)
from rlrewrite.evaluation.quiz_tasks import write_quiz_tasks
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
        update={"quiz_tasks": ["x"], "lm_eval_tasks": ["arc_easy"]})
    assert general_tasks(bench, eval_cfg(quiz_variants=["mc", "gen"])) == ["quiz_x", "quiz_x_gen", "arc_easy"]
    assert general_tasks(bench, eval_cfg(quiz_variants=["gen"])) == ["quiz_x_gen", "arc_easy"]


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


def test_flips_and_compare():
    assert flips({"0": 1, "1": 0, "2": 1}, {"0": 0, "1": 1, "2": 1}) == {"lost": 1, "gained": 1}
    base = {DOWNSTREAM_TASK: {"score": 0.1, "items": {"0": 0, "1": 1}},
            "quiz_x": {"score": 0.6, "items": {"0": 1, "1": 1}},
            "quiz_y": {"score": 0.5, "items": {"0": 1, "1": 0}}}
    tuned = {DOWNSTREAM_TASK: {"score": 0.4, "items": {"0": 1, "1": 1}},
             "quiz_x": {"score": 0.5, "items": {"0": 0, "1": 1}},
             "quiz_y": {"score": 0.6, "items": {"0": 1, "1": 1}}}
    result = compare(base, tuned, ["quiz_x", "quiz_y"])
    assert result["downstream"] == {"base": 0.1, "tuned": 0.4, "gain": 0.3}
    assert result["general"]["quiz_x"]["forgetting"] == pytest.approx(0.1)
    assert result["general"]["quiz_y"]["forgetting"] == pytest.approx(-0.1)
    assert result["forgetting_mean"] == pytest.approx(0.0)
    assert result["flips"]["quiz_x"] == {"lost": 1, "gained": 0}
    assert result["flips"][DOWNSTREAM_TASK] == {"lost": 0, "gained": 1}
