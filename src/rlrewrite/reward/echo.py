"""Instruction echo: a rewrite that repeats the rewrite prompt's own wording.

A 135M rewriter often copies the prompt's scaffolding into its answer ("Existing solution:",
"math word problem", "in LaTeX boxed format"), and a gate that checks only the answer and the
steps lets it through: in the K=12 pool of docs/results.md, 414 of 1,040 rewrites that passed
the gate did. SFT on such targets teaches the model to write about rewriting, which π0's own
answers never do (none of its 200 base-evaluation answers contains one of these pairs).

The check compares word pairs: two adjacent words, neither an English stop word (scikit-learn's
list), within one line. A rewrite echoes the instruction when it holds a pair from the template's
fixed lines (those without a `{field}`) that is in neither the question nor the expert solution,
so a problem that itself says "word problem" can be restated freely.
"""

from __future__ import annotations

import re

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_WORD = re.compile(r"[a-z]+")
_FIELD = re.compile(r"\{\w+\}")


def content_pairs(text: str) -> set[tuple[str, str]]:
    """Adjacent word pairs of `text`, line by line, lower-cased, with no stop word in them."""
    pairs = set()
    for line in text.lower().splitlines():
        words = _WORD.findall(line)
        pairs.update((a, b) for a, b in zip(words, words[1:])
                     if a not in ENGLISH_STOP_WORDS and b not in ENGLISH_STOP_WORDS)
    return pairs


class InstructionEcho:
    """Finds the rewrite prompt's wording in a rewrite (see the module docstring)."""

    def __init__(self, template: str):
        fixed = "\n".join(line for line in template.splitlines() if not _FIELD.search(line))
        self.pairs = frozenset(content_pairs(fixed))

    def echoed(self, text: str, question: str, solution: str) -> list[str]:
        """The instruction's pairs `text` repeats that the question and solution lack."""
        found = (content_pairs(text) & self.pairs) - content_pairs(question) - content_pairs(solution)
        return sorted(" ".join(pair) for pair in found)

    def __call__(self, text: str, question: str, solution: str) -> bool:
        return bool(self.echoed(text, question, solution))
