"""Downstream data sources, each normalised to records `{id, question, solution, answer}`.

A source is a stream of records in a seeded random order; the splitter takes what it needs.
Skipping is documented per source: `hf` skips (and counts) rows whose gold answer cannot be
extracted, since large corpora such as NuminaMath-CoT hold proofs with no final answer; a user's
own `jsonl` file and `reasoning_gym` data must be complete, so a bad record there is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rlrewrite.config import DataParams
from rlrewrite.data.rendered import RENDERERS, TEMPLATES
from rlrewrite.jsonl import DataError, iter_jsonl
from rlrewrite.reward.answers import extract_final_answer

# reasoning-gym datasets are procedural: items are generated lazily per index, so a large
# nominal size costs nothing and lets the splitter replace dropped collisions.
_REASONING_GYM_SIZE = 1_000_000


class RecordStream:
    """Iterable of normalised records; `skipped` counts rows dropped by the documented rule."""

    def __init__(self, records: Iterator[dict]):
        self._records = records
        self.skipped = 0

    def __iter__(self) -> Iterator[dict]:
        return self._records


def _record(rid: str, question, solution, answer) -> dict:
    return {"id": rid, "question": str(question).strip(), "solution": str(solution).strip(),
            "answer": str(answer).strip()}


def _reasoning_gym(data: DataParams, seed: int) -> RecordStream:
    """Items with an expert solution: the dataset's own (`metadata.answer_cot`, GSM-Symbolic)
    or one rendered step by step (rendered.py). GSM-Symbolic items name their template (the
    generator), leg_counting items theirs (the animals asked about)."""
    import reasoning_gym

    try:
        dataset = reasoning_gym.create_dataset(data.name, size=_REASONING_GYM_SIZE, seed=seed,
                                               **data.options)
    except Exception as exc:  # reasoning-gym raises plain ValueError/KeyError/AssertionError
        raise DataError(f"data.name/data.options: reasoning-gym cannot build '{data.name}' with "
                        f"options {data.options} ({type(exc).__name__}: {exc})") from None
    templates = getattr(dataset, "task_indices", None)  # GSM-Symbolic: generator per item

    def records() -> Iterator[dict]:
        for index in range(len(dataset)):
            item = dataset[index]
            solution = item.get("metadata", {}).get("answer_cot")
            if not solution and data.name in RENDERERS:
                solution = RENDERERS[data.name](item)
            if not solution:
                raise DataError(
                    f"data.name: reasoning-gym dataset '{data.name}' has no metadata.answer_cot "
                    "(an expert step-by-step solution) and no renderer; use gsm_symbolic or one "
                    f"of {sorted(RENDERERS)}")
            record = _record(f"{data.name}-{index}", item["question"], solution, item["answer"])
            if templates is not None:
                record["template"] = f"{data.name}/{templates[index]}"
            elif data.name in TEMPLATES:
                record["template"] = f"{data.name}/{TEMPLATES[data.name](item)}"
            yield record

    return RecordStream(records())


def _from_row(row: dict, data: DataParams, where: str) -> dict | None:
    """Map one row through data.fields; None when its gold answer cannot be extracted."""
    fields = data.fields
    for role in ("question", "solution", "answer"):
        name = getattr(fields, role)
        if name is not None and name not in row:
            raise DataError(f"{where}: no field '{name}' (data.fields.{role}); "
                            f"fields present: {sorted(row)}")
    question, solution = row[fields.question], row[fields.solution]
    for role, value in (("question", question), ("solution", solution)):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: field '{getattr(fields, role)}' (data.fields.{role}) "
                            "is empty or not text")
    answer = row[fields.answer] if fields.answer else extract_final_answer(solution)
    if answer is None or not str(answer).strip():
        return None
    return {"question": question, "solution": solution, "answer": answer}


def _hf(data: DataParams, split: str, seed: int) -> RecordStream:
    import datasets

    try:
        dataset = datasets.load_dataset(data.name, data.config, split=split)
    except Exception as exc:
        raise DataError(f"data.name/data.config/split: cannot load HF dataset "
                        f"'{data.name}' (config {data.config!r}, split '{split}'): {exc}") from None
    # ids name the row in the original split, so they stay stable under other seeds and sizes
    dataset = dataset.add_column("_row", list(range(len(dataset)))).shuffle(seed=seed)
    short_name = data.name.rstrip("/").split("/")[-1]

    def records() -> Iterator[dict]:
        for row in dataset:
            mapped = _from_row(row, data, f"{data.name}[{split}] row {row['_row']}")
            if mapped is None:
                stream.skipped += 1
                continue
            yield _record(f"{short_name}-{split}-{row['_row']}", **mapped)

    stream = RecordStream(records())
    return stream


def _jsonl(data: DataParams, seed: int) -> RecordStream:
    import random

    path = Path(data.name)
    if not path.is_file():
        raise DataError(f"data.name: JSONL file '{path}' does not exist")
    rows, first_line = [], {}
    for lineno, row in iter_jsonl(path):
        if "id" in row:
            rid = str(row["id"])
            if rid in first_line:
                raise DataError(f"{path}:{lineno}: duplicate id {rid!r} (first on line "
                                f"{first_line[rid]}): ids name items in every output")
            first_line[rid] = lineno
        mapped = _from_row(row, data, f"{path}:{lineno}")
        if mapped is None:
            raise DataError(f"{path}:{lineno}: cannot extract a final answer from field "
                            f"'{data.fields.solution}' (no '#### N' or \\boxed{{}}); "
                            "add an answer field and set data.fields.answer")
        rows.append(_record(str(row.get("id", f"{path.stem}-{lineno}")), **mapped))
    random.Random(seed).shuffle(rows)
    return RecordStream(iter(rows))


def open_source(data: DataParams, seed: int, split: str | None = None) -> RecordStream:
    """Records of `data` in a seeded random order; `split` selects an HF split."""
    if data.source != "hf" and data.test_split is not None:
        raise DataError(f"data.test_split applies to source 'hf' only; set it to null for "
                        f"source '{data.source}'")
    if data.source == "reasoning_gym":
        return _reasoning_gym(data, seed)
    if data.source == "hf":
        return _hf(data, split or data.train_split, seed)
    return _jsonl(data, seed)
