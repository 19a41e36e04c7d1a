"""The BSD `quiz` database (bsdgames) as multiple-choice items.

Record grammar (quiz(6)): one record a line, fields split by `:`; `a|b` alternatives; `{x}` an
optional part; `[a|b]` a required choice; `\\` escapes the next character. The canonical form of
a field takes every optional part and the first alternative everywhere:
`Cal{if{ornia}}|CA` -> `California`, `[St.|Saint] John's` -> `St. John's`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from rlrewrite.jsonl import DataError

# AST: an Alt is a list of Seqs; a Seq is a list of items: str, ("opt", Alt) or ("req", Alt).
_CLOSERS = {"{": "}", "[": "]"}


def _parse_alt(text: str, i: int, closer: str | None) -> tuple[list, int]:
    alternatives, seq, literal = [], [], []

    def flush():
        if literal:
            seq.append("".join(literal))
            literal.clear()

    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            literal.append(text[i + 1])
            i += 2
            continue
        if ch in _CLOSERS:
            flush()
            inner, i = _parse_alt(text, i + 1, _CLOSERS[ch])
            seq.append(("opt" if ch == "{" else "req", inner))
            continue
        if ch == closer:
            flush()
            alternatives.append(seq)
            return alternatives, i + 1
        if ch in "}]":
            raise ValueError(f"unbalanced '{ch}' at position {i} in {text!r}")
        if ch == "|":
            flush()
            alternatives.append(seq)
            seq = []
        else:
            literal.append(ch)
        i += 1
    if closer is not None:
        raise ValueError(f"missing '{closer}' in {text!r}")
    flush()
    alternatives.append(seq)
    return alternatives, i


def parse_pattern(text: str) -> list:
    alternatives, _ = _parse_alt(text, 0, None)
    return alternatives


def _canonical(alt: list) -> str:
    return "".join(item if isinstance(item, str) else _canonical(item[1]) for item in alt[0])


def _forms(alt: list) -> set[str]:
    out = set()
    for seq in alt:
        options = []
        for item in seq:
            if isinstance(item, str):
                options.append({item})
            else:
                kind, inner = item
                options.append(_forms(inner) | ({""} if kind == "opt" else set()))
        out.update("".join(parts) for parts in itertools.product(*options))
    return out


def canonical(text: str) -> str:
    """The full, first-alternative form of a quiz field."""
    return " ".join(_canonical(parse_pattern(text)).split())


def accepted_forms(text: str) -> set[str]:
    """Every string the quiz accepts for a field."""
    return {" ".join(form.split()) for form in _forms(parse_pattern(text))} - {""}


def split_fields(line: str) -> list[str]:
    """Split a record at `:` outside brackets (escapes kept for the field parser)."""
    fields, depth, current, i = [], 0, [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            current.append(line[i:i + 2])
            i += 2
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == ":" and depth == 0:
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    fields.append("".join(current))
    return fields


@dataclass(frozen=True)
class QuizTask:
    name: str
    files: list[str]
    question_field: int
    answer_field: int
    template: str  # with `{question}`


def load_task_definitions(path: Path) -> dict[str, QuizTask]:
    raw = yaml.safe_load(path.read_text())
    tasks = {}
    for name, spec in raw.items():
        try:
            tasks[name] = QuizTask(name=name, **spec)
        except TypeError as exc:
            raise DataError(f"{path}: task '{name}': {exc}") from None
    return tasks


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, record) with the quiz format's continuation joined: a line
    ending in a backslash goes on on the next one."""
    records, start, parts = [], None, []
    for lineno, line in enumerate(text.splitlines(), start=1):
        start = start or lineno
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        records.append((start, "".join(parts) + line))
        start, parts = None, []
    if parts:
        records.append((start, "".join(parts)))
    return records


def read_utf8(path: Path) -> str:
    """A quiz file's text; a byte that is not UTF-8 is named by file and line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x}: {exc.reason}); "
                        "save the file as UTF-8") from None


def read_pairs(quiz_dir: Path, task: QuizTask) -> list[tuple[str, str, set[str]]]:
    """(question, canonical answer, accepted answers) for every usable record of the task."""
    pairs, seen = [], set()
    for file in task.files:
        path = quiz_dir / file
        if not path.is_file():
            raise DataError(f"{path}: quiz file named by task '{task.name}' does not exist")
        for lineno, line in logical_lines(read_utf8(path)):
            if not line.strip():
                continue
            fields = split_fields(line)
            if max(task.question_field, task.answer_field) >= len(fields):
                raise DataError(f"{path}:{lineno}: has {len(fields)} fields, task "
                                f"'{task.name}' reads field {max(task.question_field, task.answer_field)}")
            try:
                question = canonical(fields[task.question_field])
                answer = canonical(fields[task.answer_field])
                accepted = accepted_forms(fields[task.answer_field])
            except ValueError as exc:
                raise DataError(f"{path}:{lineno}: {exc}") from None
            if not question or not answer or question.lower() in seen:
                continue  # empty field (e.g. area codes with no city) or a repeated question
            seen.add(question.lower())
            pairs.append((question, answer, accepted))
    return pairs


def build_items(task: QuizTask, pairs: list[tuple[str, str, set[str]]], n_choices: int,
                max_items: int, seed: int) -> list[dict]:
    """Seeded multiple-choice items; distractors are other records' answers of the same field,
    never an accepted form of the gold answer."""
    rng = random.Random(f"{seed}-{task.name}")
    answers = sorted({answer for _, answer, _ in pairs})
    chosen = rng.sample(pairs, min(max_items, len(pairs)))
    items = []
    for index, (question, answer, accepted) in enumerate(chosen):
        excluded = {form.lower() for form in accepted} | {answer.lower()}
        pool = [a for a in answers if a.lower() not in excluded]
        if len(pool) < n_choices - 1:
            raise DataError(f"quiz task '{task.name}': only {len(pool)} distinct distractors "
                            f"for '{question}', need {n_choices - 1}")
        choices = rng.sample(pool, n_choices - 1) + [answer]
        rng.shuffle(choices)
        items.append({"id": f"{task.name}-{index}", "question": task.template.format(question=question),
                      "choices": choices, "gold": choices.index(answer), "answer": answer})
    return items
