
from rlrewrite.evaluation.quiz_tasks import write_quiz_tasks
from rlrewrite.jsonl import write_jsonl

ITEMS = [{"id": f"t-{i}", "question": f"Capital of X{i}?", "choices": ["a", "b", "c", "d"],
          "gold": i % 4, "answer": "abcd"[i % 4]} for i in range(6)]


def test_written_tasks_load_offline_in_lm_eval(tmp_path, monkeypatch):
    from lm_eval.tasks import TaskManager, get_task_dict

    monkeypatch.chdir(tmp_path)  # data paths are relative to the repository root
    write_jsonl("data/benchmarks/quiz_x.jsonl", ITEMS)
    (tmp_path / "tasks").mkdir()
    names = write_quiz_tasks(tmp_path / "tasks", "data/benchmarks/quiz_x.jsonl", "x", 4)
    assert names == ["quiz_x", "quiz_x_gen"]

    tasks = get_task_dict(names, TaskManager(include_path=str(tmp_path / "tasks")))
    mc, gen = tasks["quiz_x"], tasks["quiz_x_gen"]
    docs = list(mc.test_docs())
    assert len(docs) == 6
    assert mc.doc_to_choice(docs[1]) == ["a", "b", "c", "d"]
    assert mc.doc_to_target(docs[1]) == 1
    assert gen.doc_to_target(docs[2]) == "C"
    prompt = gen.doc_to_text(docs[0])
    assert "D. d" in prompt and "\\boxed{}" in prompt

    # the strict filter takes the boxed letter and nothing else
    resps = [["I think \\boxed{B}."], ["B"]]
    for make_filter in gen._filters[0].filters:
        resps = list(make_filter().apply(resps, docs[:2]))
    assert resps == ["B", "[invalid]"]


def test_offline_run_names_an_lm_eval_task_whose_hub_dataset_is_not_cached(tmp_path, monkeypatch):
    """Offline, `validate` names the task and its uncached Hub datasets (groups expanded) instead
    of letting `evaluate-base` end in a Hub traceback; a cached dataset passes."""
    import datasets.config
    import pytest
    from huggingface_hub import constants

    from rlrewrite.config import ParamsError
    from rlrewrite.evaluation.harness import hub_datasets, task_manager
    from rlrewrite.validation import check_offline_tasks

    manager = task_manager(tasks=["arc_easy", "mmlu"])  # lm-eval's own tasks: indexed
    needs = hub_datasets(["arc_easy", "mmlu"], manager)
    assert needs["arc_easy"] == {"allenai/ai2_arc"} and needs["mmlu"] == {"cais/mmlu"}

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    with pytest.raises(ParamsError, match=r"benchmarks.lm_eval_tasks: arc_easy reads "
                                          r"allenai/ai2_arc, not in the local cache"):
        check_offline_tasks(["arc_easy"], manager)
    (tmp_path / "hub" / "datasets--allenai--ai2_arc").mkdir(parents=True)
    check_offline_tasks(["arc_easy"], manager)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    check_offline_tasks(["mmlu"], manager)  # online: downloading is allowed


def test_our_tasks_alone_skip_indexing_lm_evals_own_tasks():
    """Only a named lm-eval task makes the index cover lm-eval's ~15k task files (5-10 s a
    stage); ours (the downstream task, quizzes, standard overlays) are found without them."""
    from rlrewrite.evaluation.harness import DOWNSTREAM_TASK, task_manager

    manager = task_manager(tasks=[DOWNSTREAM_TASK])
    assert DOWNSTREAM_TASK in manager.all_tasks and "arc_easy" not in manager.all_tasks
