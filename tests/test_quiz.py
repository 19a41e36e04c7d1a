from pathlib import Path

import pytest

from rlrewrite.data.quiz import (
    QuizTask,
    accepted_forms,
    build_items,
    canonical,
    load_task_definitions,
    read_pairs,
    split_fields,
)
from rlrewrite.jsonl import DataError

REPO = Path(__file__).resolve().parents[1]
QUIZ = REPO / "data" / "bsd-quiz"


@pytest.mark.parametrize("field, expected", [
    ("Cal{if{ornia}}|CA", "California"),
    ("Andorra la V[ell|iej]a", "Andorra la Vella"),
    ("[St.|Saint] John's", "St. John's"),
    ("{saguaro }cactus", "saguaro cactus"),
    ("forget{-| }me{-| }not", "forget-me-not"),
    ("Vienna|Wien", "Vienna"),
    ("a\\|b", "a|b"),
])
def test_canonical(field, expected):
    assert canonical(field) == expected


def test_accepted_forms_expand_alternatives_and_optional_parts():
    assert accepted_forms("Cal{if{ornia}}|CA") == {"Cal", "Calif", "California", "CA"}
    assert accepted_forms("Andorra la V[ell|iej]a") == {"Andorra la Vella", "Andorra la Vieja"}
    assert "forget me not" in accepted_forms("forget{-| }me{-| }not")


@pytest.mark.parametrize("bad", ["a{b", "a]b", "[a|b"])
def test_unbalanced_patterns_raise(bad):
    with pytest.raises(ValueError):
        canonical(bad)


def test_split_fields_ignores_colons_inside_brackets():
    assert split_fields("Alabama|Ala|AL:Montgomery:AL:goldenrod") == ["Alabama|Ala|AL", "Montgomery", "AL", "goldenrod"]
    assert split_fields("x{a:b}:y") == ["x{a:b}", "y"]
    assert split_fields("202:washington d c|DC:") == ["202", "washington d c|DC", ""]


def _task(**kw):
    spec = dict(name="t", files=["f"], question_field=0, answer_field=1, template="Q {question}?")
    spec.update(kw)
    return QuizTask(**spec)


def test_read_pairs_skips_empty_and_repeated_questions(tmp_path):
    (tmp_path / "f").write_text("A:1\nB:\nA|a:3\nC:{x}4\n\n")
    pairs = read_pairs(tmp_path, _task())
    assert [(q, a) for q, a, _ in pairs] == [("A", "1"), ("C", "x4")]


def test_read_pairs_joins_backslash_continued_records(tmp_path):
    """The bsd quiz format's own line continuation (used by several files of the collection)."""
    (tmp_path / "f").write_text("A:1\nLong \\\nquestion:2\nB\n")
    with pytest.raises(DataError, match=r"f:4: has 1 fields"):  # numbered as in the file
        read_pairs(tmp_path, _task())
    (tmp_path / "f").write_text("A:1\nLong \\\nquestion:2\n")
    assert [(q, a) for q, a, _ in read_pairs(tmp_path, _task())] == [("A", "1"),
                                                                      ("Long question", "2")]


def test_read_pairs_errors_name_file_and_line(tmp_path):
    (tmp_path / "f").write_text("A:1\nB\n")
    with pytest.raises(DataError, match=r"f:2: has 1 fields"):
        read_pairs(tmp_path, _task())
    with pytest.raises(DataError, match="does not exist"):
        read_pairs(tmp_path, _task(files=["missing"]))
    (tmp_path / "f").write_bytes("A:1\nB:2\nCaf\u00e9:3\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"f:3: not UTF-8 \(byte 0xe9"):
        read_pairs(tmp_path, _task())


def test_items_are_seeded_and_well_formed():
    tasks = load_task_definitions(QUIZ / "tasks.yaml")
    task = tasks["world_capitals"]
    pairs = read_pairs(QUIZ, task)
    items = build_items(task, pairs, 4, 50, seed=1)
    assert items == build_items(task, pairs, 4, 50, seed=1)
    assert items != build_items(task, pairs, 4, 50, seed=2)
    assert len(items) == 50
    accepted = {q: acc for q, _, acc in pairs}
    for item in items:
        assert len(item["choices"]) == 4 == len(set(item["choices"]))
        assert item["choices"][item["gold"]] == item["answer"]
        country = item["question"].removeprefix("What is the capital of ").removesuffix("?")
        distractors = [c for i, c in enumerate(item["choices"]) if i != item["gold"]]
        assert not {d.lower() for d in distractors} & {a.lower() for a in accepted[country]}


def test_every_defined_task_builds():
    tasks = load_task_definitions(QUIZ / "tasks.yaml")
    for task in tasks.values():
        items = build_items(task, read_pairs(QUIZ, task), 4, 1000, seed=0)
        assert len(items) >= 10, task.name


def test_too_few_distractors(tmp_path):
    (tmp_path / "f").write_text("A:1\nB:2\n")
    with pytest.raises(DataError, match="distractors"):
        build_items(_task(), read_pairs(tmp_path, _task()), 4, 10, seed=0)
