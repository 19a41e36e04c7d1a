"""dvc.yaml read once: each stage's entry, its deps and outputs, and what runs upstream of it;
and what dvc.lock recorded of a stage's last run."""

from __future__ import annotations

from pathlib import Path

import yaml

from rlrewrite.config import ParamsError

DVC_YAML = Path("dvc.yaml")


def stages(dvc_yaml: str | Path = DVC_YAML) -> dict[str, dict]:
    """{stage: its dvc.yaml entry}; an unreadable file is a ParamsError naming it."""
    dvc_yaml = Path(dvc_yaml)
    try:
        found = yaml.safe_load(dvc_yaml.read_text())["stages"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ParamsError(f"{dvc_yaml}: cannot read the stages: {exc}") from None
    if not isinstance(found, dict):
        raise ParamsError(f"{dvc_yaml}: `stages` is not a mapping")
    return found


def _paths(entries) -> list[str]:
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]


def stage_graph(dvc_yaml: str | Path = DVC_YAML) -> dict[str, dict]:
    """{stage: {"deps": [...], "outs": [...], "metrics": [...], "plots": [...]}} as declared."""
    return {name: {kind: _paths(entry.get(kind)) for kind in ("deps", "outs", "metrics", "plots")}
            for name, entry in stages(dvc_yaml).items()}


def outputs(dvc_yaml: str | Path = DVC_YAML) -> list[Path]:
    """Every path a stage writes (outs, metrics, plots), which DVC deletes before running it."""
    return [Path(p) for entry in stage_graph(dvc_yaml).values()
            for kind in ("outs", "metrics", "plots") for p in entry[kind]]


def upstream(stage: str, graph: dict[str, dict]) -> list[str]:
    """The stages whose outputs `stage` depends on, directly or not (dvc.yaml order)."""
    def produces(producer: str, dep: str) -> bool:
        return any(dep == out or dep.startswith(f"{out}/") or out.startswith(f"{dep}/")
                   for out in graph[producer]["outs"] + graph[producer]["metrics"])

    found, todo = set(), [stage]
    while todo:
        current = todo.pop()
        for other in graph:
            if other not in found and other != stage and any(
                    produces(other, dep) for dep in graph[current]["deps"]):
                found.add(other)
                todo.append(other)
    return [name for name in graph if name in found]


def recorded_outputs(stage: str, lock_file: Path = Path("dvc.lock")) -> list[str]:
    """The outputs of `stage`'s last successful run, as dvc.lock records them."""
    try:
        entry = (yaml.safe_load(lock_file.read_text()) or {}).get("stages", {}).get(stage) or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    return [out["path"] for out in entry.get("outs") or [] if isinstance(out, dict)
            and "path" in out]
