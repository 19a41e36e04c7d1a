"""Drawing the sft / rl / test splits, with no test question leaking into training."""

from __future__ import annotations

import re
from collections.abc import Iterable
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


def _take(records: Iterable[dict], count: int, what: str) -> list[dict]:
    taken = []
    for record in records:
        taken.append(record)
        if len(taken) == count:
            return taken
    raise DataError(f"data.sizes.{what}: asks for {count} records but the source has only "
                    f"{len(taken)}")


def draw_splits(train_stream: Iterable[dict], test_stream: Iterable[dict] | None,
                sizes: SplitSizes, rl_shares_sft: bool) -> Splits:
    """Test comes first (from `test_stream`, or the head of `train_stream` when None); then the
    training questions, skipping any whose normalised text is a test question. With
    `rl_shares_sft` the rl questions are the first `sizes.rl` training questions (the sft ones
    first); otherwise they follow the sft ones, disjoint."""
    train_iter = iter(train_stream)
    test = _take(test_stream if test_stream is not None else train_iter, sizes.test, "test")
    test_keys = {normalise_question(r["question"]) for r in test}

    need = max(sizes.sft, sizes.rl) if rl_shares_sft else sizes.sft + sizes.rl
    train, collisions = [], 0
    for record in train_iter:
        if normalise_question(record["question"]) in test_keys:
            collisions += 1
            continue
        train.append(record)
        if len(train) == need:
            break
    else:
        raise DataError(f"data.sizes: sft+rl need {need} training records but the source has "
                        f"only {len(train)} after dropping {collisions} that match test questions")

    rl = train[: sizes.rl] if rl_shares_sft else train[sizes.sft:]
    return Splits(sft=train[: sizes.sft], rl=rl, test=test, collisions_dropped=collisions)
