"""Each stage reads exactly the params its `dvc.yaml` entry lists, and MLflow logs exactly those.

`dvc.yaml` is the one stage -> params map. `load_stage_params(stage)` validates the whole
params.yaml (config.py) and returns a view of it that only opens the keys the stage lists: a read
of any other key stops the stage with a ParamsError that names the key, the stage and dvc.yaml.
So a stage cannot depend on a param whose change would not rerun it, and the logged params are the
stage's dependencies, not a hand-kept copy of them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from rlrewrite.config import Params, ParamsError, flatten, load_params
from rlrewrite.dag import stages as dag_stages


def declared_params(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """The dotted params keys `stage` lists in dvc.yaml (default params file only; an entry
    `params.yaml:` without keys lists all of them)."""
    dvc_yaml = Path(dvc_yaml)
    stages = dag_stages(dvc_yaml)
    if stage not in stages:
        raise ParamsError(f"{dvc_yaml}: no stage '{stage}' (stages: {', '.join(stages)})")
    keys = []
    for entry in stages[stage].get("params", []):
        if entry in ({"params.yaml": None}, {"params.yaml": []}):  # the whole file
            keys.extend(Params.model_fields)
            continue
        if not isinstance(entry, str):
            raise ParamsError(f"{dvc_yaml}: stage '{stage}': params entry {entry!r} names another "
                              f"file; stages read params.yaml only")
        keys.append(entry)
    return keys


class StageParams:
    """A read-only view of `Params` (or one of its sections) limited to the declared keys."""

    def __init__(self, value: BaseModel, declared: frozenset[str], stage: str, prefix: str = ""):
        self._value, self._declared, self._stage, self._prefix = value, declared, stage, prefix

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        key = f"{self._prefix}{name}"
        if key in self._declared or any(key.startswith(f"{d}.") for d in self._declared):
            return getattr(self._value, name)  # the key or a section above it is declared
        if any(d.startswith(f"{key}.") for d in self._declared):
            return StageParams(getattr(self._value, name), self._declared, self._stage, f"{key}.")
        raise ParamsError(f"stage '{self._stage}' reads params key '{key}', which its entry in "
                          f"dvc.yaml does not list: add it to the stage's params there, so that a "
                          f"change to it reruns the stage")

    def declares(self, key: str) -> bool:
        return f"{self._prefix}{key}" in self._declared

    def __setattr__(self, name, value):
        if not name.startswith("_"):
            raise AttributeError("params are read-only")
        object.__setattr__(self, name, value)

    def logged(self) -> dict:
        """{dotted key: value} for every declared key, sections flattened (what MLflow logs)."""
        out: dict = {}
        for key in sorted(self._declared):
            value = self._value
            for part in key.split("."):
                value = getattr(value, part)
            out.update(flatten({key: value.model_dump() if isinstance(value, BaseModel)
                                else value}))
        return out


def load_stage_params(stage: str, params_file: str | Path = "params.yaml",
                      dvc_yaml: str | Path = "dvc.yaml") -> StageParams:
    params: Params = load_params(params_file)
    declared = frozenset(declared_params(stage, dvc_yaml))
    for key in declared:
        value = params
        for part in key.split("."):
            if not hasattr(value, part) or not isinstance(value, BaseModel):
                raise ParamsError(f"{dvc_yaml}: stage '{stage}' lists params key '{key}', which "
                                  f"{params_file} does not define")
            value = getattr(value, part)
    return StageParams(params, declared, stage)
