"""Prompt templates: plain text files with `{name}` placeholders (other braces, such as
`\\boxed{}`, are left alone), rendered as one user turn of the chat template."""

from __future__ import annotations

import re
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{(question|solution|answer|candidate)\}")


# the placeholders each prompt file must have (rewriter.prompt_file, gate.judge_prompt_file)
REWRITE_FIELDS = ("question", "solution")
JUDGE_FIELDS = ("question", "answer", "candidate")


def load_template(path: str | Path, required: tuple[str, ...]) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt template '{path}' does not exist")
    text = path.read_text(encoding="utf-8")
    missing = [name for name in required if "{" + name + "}" not in text]
    if missing:
        raise ValueError(f"{path}: template lacks placeholder(s) {', '.join('{' + m + '}' for m in missing)}")
    return text


def fill(template: str, **values: str) -> str:
    """Replace `{question}`-style placeholders in one pass (values may contain braces)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0),
                            template)


def user_turn(content: str) -> list[dict]:
    return [{"role": "user", "content": content}]


def rewrite_prompt(template: str, question: str, solution: str) -> list[dict]:
    """The rewrite request: the one prompt the rewriter trains on and the rewrite stage sends."""
    return user_turn(fill(template, question=question, solution=solution))
