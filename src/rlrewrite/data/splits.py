"""Drawing the sft / rl / test splits, with no test question, and no test template, in training.

A record may name the template or generator it came from (`template`, e.g. GSM-Symbolic's
generator index): training never sees a template that test uses, so test measures the skill
rather than recall of a template seen in training with other numbers; `test_templates` can
also cap how many templates test draws from (GSM-Symbolic has only 100). Records without a
template are kept apart by question text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rlrewrite.config import SplitSizes
from rlrewrite.jsonl import DataError


def normalise_question(question: str) -> str:
    """Case, whitespace and punctuation-insensitive key for overlap checks."""
    return " ".join(re.sub(r"[^\w\s]", " ", question.lower()).split())


@dataclass
class Splits:
    sft: list[dict]
    rl: list[dict]
    test: list[dict]
    collisions_dropped: int  # training candidates whose question equals a test question
    template_collisions_dropped: int  # training candidates from a test template
    test_templates: list[str]
    rl_duplicates_dropped: int = 0  # rl candidates whose question is an sft (or earlier rl) one


def _take_test(records: Iterator[dict], count: int, max_templates: int | None,
               held_back: list[dict]) -> list[dict]:
    """The first `count` records whose template is among the first `max_templates` templates
    met (any template when None); records passed over are kept for training in `held_back`."""
    test, templates = [], []
    for record in records:
        template = record.get("template")
        if template is not None and max_templates is not None and template not in templates:
            if len(templates) == max_templates:
                held_back.append(record)
                continue
            templates.append(template)
        test.append(record)
        if len(test) == count:
            return test
    raise DataError(f"data.sizes.test: asks for {count} records but the source has only "
                    f"{len(test)}" + (f" in {max_templates} templates (data.test_templates)"
                                      if max_templates else ""))


def draw_splits(train_stream: Iterable[dict], test_stream: Iterable[dict] | None,
                sizes: SplitSizes, rl_shares_sft: bool,
                test_templates: int | None = None) -> Splits:
    """Test comes first (from `test_stream`, or the head of `train_stream` when None); then the
    training questions, skipping any whose normalised text is a test question or whose template
    is a test template. With `rl_shares_sft` the rl questions are the first `sizes.rl` training
    questions (the sft ones first); otherwise they follow the sft ones, disjoint by normalised
    question (a generator can repeat a question: the repeat is skipped)."""
    train_iter = iter(train_stream)
    held_back: list[dict] = []
    test = _take_test(iter(test_stream) if test_stream is not None else train_iter, sizes.test,
                      test_templates, held_back if test_stream is None else [])
    test_keys = {normalise_question(r["question"]) for r in test}
    test_template_set = {r["template"] for r in test if r.get("template") is not None}

    need = max(sizes.sft, sizes.rl) if rl_shares_sft else sizes.sft + sizes.rl
    train, collisions, template_collisions, duplicates = [], 0, 0, 0
    taken: set[str] = set()  # the sft questions, then the rl ones (disjoint rl only)
    for record in itertools.chain(held_back, train_iter):
        key = normalise_question(record["question"])
        if key in test_keys:
            collisions += 1
            continue
        if record.get("template") in test_template_set:
            template_collisions += 1
            continue
        if not rl_shares_sft and len(train) >= sizes.sft and key in taken:
            duplicates += 1
            continue
        taken.add(key)
        train.append(record)
        if len(train) == need:
            break
    else:
        raise DataError(f"data.sizes: sft+rl need {need} training records but the source has "
                        f"only {len(train)} after dropping {collisions} that match test questions "
                        f"and {template_collisions} from test templates")

    rl = train[: sizes.rl] if rl_shares_sft else train[sizes.sft:]
    return Splits(sft=train[: sizes.sft], rl=rl, test=test, collisions_dropped=collisions,
                  template_collisions_dropped=template_collisions,
                  test_templates=sorted(test_template_set), rl_duplicates_dropped=duplicates)
