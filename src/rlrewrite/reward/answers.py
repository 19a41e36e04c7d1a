"""Gold-answer extraction from expert solutions, and answer equivalence through math-verify."""

from __future__ import annotations

import re

from math_verify import parse, verify

_GSM8K_FINAL = re.compile(r"^####\s*(.+?)\s*$", re.MULTILINE)


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced; None if absent."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j].strip() or None
    return None  # unbalanced: the solution was cut off


def extract_final_answer(solution: str) -> str | None:
    """The gold answer stated by an expert solution: GSM8K's `#### N`, else the last `\\boxed{}`."""
    matches = _GSM8K_FINAL.findall(solution)
    if matches:
        return matches[-1].replace(",", "").strip() or None
    return last_boxed(solution)


def parse_gold(answer: str) -> list:
    """Parse a gold answer string once; pass the result to `matches_gold` for many candidates."""
    return parse(f"${answer}$")


def gold_is_parseable(answer: str) -> bool:
    """Whether math-verify reads the gold answer as math (it falls back to the raw string for
    text it cannot parse, such as an unbalanced `\\frac{`)."""
    return any(not isinstance(item, str) for item in parse_gold(answer))


def matches_gold(candidate: str, gold: list) -> bool:
    """Whether the final answer stated in `candidate` (boxed, else last number/expression)
    is mathematically equivalent to the parsed gold answer."""
    if not candidate.strip():
        return False
    return bool(verify(gold, parse(candidate)))
