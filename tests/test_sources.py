import json

import pytest

from rlrewrite.config import DataParams
from rlrewrite.data.sources import open_source
from rlrewrite.jsonl import DataError


def _data(**overrides) -> DataParams:
    base = dict(seed=0, source="jsonl", name="", config=None, train_split="train", test_split=None,
                fields={"question": "question", "solution": "solution", "answer": None},
                sizes={"sft": 1, "rl": 1, "test": 1}, rl_shares_sft=False, options={}, test_templates=None)
    base.update(overrides)
    return DataParams.model_validate(base)


def _write_lines(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_reasoning_gym_gsm_symbolic_is_normalised_and_seeded():
    data = _data(source="reasoning_gym", name="gsm_symbolic")
    first = [r for r, _ in zip(open_source(data, seed=3), range(5))]
    again = [r for r, _ in zip(open_source(data, seed=3), range(5))]
    other = [r for r, _ in zip(open_source(data, seed=4), range(5))]
    assert first == again and first != other
    for record in first:
        assert set(record) == {"id", "question", "solution", "answer", "template"}
        assert record["solution"].rstrip().endswith(f"#### {record['answer']}")
        assert record["template"].startswith("gsm_symbolic/")


def test_reasoning_gym_without_solutions_is_an_error():
    data = _data(source="reasoning_gym", name="basic_arithmetic")
    with pytest.raises(DataError, match="answer_cot"):
        next(iter(open_source(data, seed=0)))


def test_reasoning_gym_unknown_dataset_or_option():
    with pytest.raises(DataError, match="cannot build 'nope'"):
        open_source(_data(source="reasoning_gym", name="nope"), seed=0)
    with pytest.raises(DataError, match=r"data.options: .*max_digitz"):
        open_source(_data(source="reasoning_gym", name="chain_sum",
                          options={"max_digitz": 2}), seed=0)


@pytest.mark.parametrize("name, options", [
    ("chain_sum", {"max_digits": 2, "max_terms": 4}),
    ("leg_counting", {"max_animals": 3}),
])
def test_reasoning_gym_families_get_rendered_step_by_step_solutions(name, options):
    from rlrewrite.reward.answers import extract_final_answer

    data = _data(source="reasoning_gym", name=name, options=options)
    for record, _ in zip(open_source(data, seed=0), range(20)):
        lines = record["solution"].splitlines()
        assert len(lines) >= 2 and "=" in lines[0]
        assert extract_final_answer(record["solution"]) == record["answer"]
        if name == "leg_counting":  # the animals, without their counts
            assert record["template"].count("+") == len(lines) - 3
        else:
            assert "template" not in record  # operators only: kept apart by question text


def test_jsonl_extracts_gsm8k_and_boxed_answers(tmp_path):
    path = _write_lines(tmp_path / "d.jsonl", [
        {"question": "1+1?", "solution": "1+1=2\n#### 2"},
        {"question": "half?", "solution": "It is $\\boxed{\\frac12}$"},
    ])
    records = list(open_source(_data(name=str(path)), seed=0))
    assert sorted(r["answer"] for r in records) == ["2", "\\frac12"]
    assert {r["id"] for r in records} == {"d-1", "d-2"}


def test_jsonl_field_mapping_and_explicit_answer(tmp_path):
    path = _write_lines(tmp_path / "d.jsonl", [{"problem": "p", "sol": "s", "gold": 5}])
    data = _data(name=str(path), fields={"question": "problem", "solution": "sol", "answer": "gold"})
    assert list(open_source(data, seed=0))[0]["answer"] == "5"


@pytest.mark.parametrize("line, message", [
    ("{not json", r"d.jsonl:2: not valid JSON"),
    ('{"question": "q"}', r"d.jsonl:2: no field 'solution' \(data.fields.solution\)"),
    ('{"question": "q", "solution": "no answer"}', r"d.jsonl:2: cannot extract a final answer"),
    ('{"question": "", "solution": "#### 1"}', r"d.jsonl:2: field 'question'.*empty"),
    ('[1, 2]', r"d.jsonl:2: expected a JSON object"),
])
def test_jsonl_bad_lines_name_file_line_and_field(tmp_path, line, message):
    path = _write_lines(tmp_path / "d.jsonl", [{"question": "ok", "solution": "#### 1"}, line])
    with pytest.raises(DataError, match=message):
        list(open_source(_data(name=str(path)), seed=0))


def test_jsonl_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_source(_data(name=str(tmp_path / "absent.jsonl")), seed=0)


def test_test_split_only_for_hf(tmp_path):
    with pytest.raises(DataError, match="test_split applies to source 'hf'"):
        open_source(_data(source="reasoning_gym", name="gsm_symbolic", test_split="test"), seed=0)


def test_hf_dataset_with_splits_skips_and_counts_unanswerable(tmp_path):
    # A local folder of JSONL files is an HF dataset to `datasets.load_dataset` (split per file).
    folder = tmp_path / "numina_like"
    folder.mkdir()
    _write_lines(folder / "train.jsonl", [
        {"problem": "p1", "solution": "so \\boxed{4}"},
        {"problem": "p2", "solution": "a proof with no final answer"},
        {"problem": "p3", "solution": "hence \\boxed{x+1}"},
    ])
    _write_lines(folder / "test.jsonl", [{"problem": "t1", "solution": "\\boxed{9}"}])
    data = _data(source="hf", name=str(folder), test_split="test",
                 fields={"question": "problem", "solution": "solution", "answer": None})
    stream = open_source(data, seed=0)
    records = list(stream)
    assert stream.skipped == 1
    assert sorted(r["answer"] for r in records) == ["4", "x+1"]
    assert all(r["id"].startswith("numina_like-train-") for r in records)
    test = list(open_source(data, seed=0, split="test"))
    assert [r["answer"] for r in test] == ["9"]


def test_hf_missing_field_is_named(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    _write_lines(folder / "train.jsonl", [{"question": "q", "answer": "#### 1"}])
    data = _data(source="hf", name=str(folder))
    with pytest.raises(DataError, match=r"no field 'solution' \(data.fields.solution\)"):
        list(open_source(data, seed=0))


def test_hf_unknown_dataset(tmp_path):
    data = _data(source="hf", name=str(tmp_path / "missing-dataset"))
    with pytest.raises(DataError, match="cannot load HF dataset"):
        open_source(data, seed=0)
