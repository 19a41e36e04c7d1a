
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
