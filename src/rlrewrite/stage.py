"""What every stage script shares: its error boundary (`run_stage("sft", main)`) and its
epilogue (`finish_stage`: the metrics file with time, memory and device)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rlrewrite.errors import PipelineError
from rlrewrite.workspace_lock import one_run


def finish_stage(path: str | Path, metrics: dict, precision: str | None = None,
                 engine: str | None = None) -> dict:
    """Every stage's epilogue: `metrics` with the stage's usage (time, peak memory, device, and
    the precision and engine where it runs a model) and its MLflow run's reference, written to
    `path`; the usage logged to the active MLflow run. Returns what it wrote."""
    from rlrewrite.jsonl import write_json
    from rlrewrite.resources import log_usage, stage_usage
    from rlrewrite.tracking import run_reference

    usage = stage_usage(precision, engine)
    written = {**metrics, **usage, **run_reference()}
    write_json(path, written)
    log_usage(usage)
    return written


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's `main` as a stage of one run per workspace, stopped if the `dvc` that started
    it dies (rlrewrite/workspace_lock.py); an expected failure (a PipelineError) ends the process
    with one line, `<stage>: <what is wrong, naming the key or file>`, and exit status 1."""
    try:
        with one_run(name):
            main()
    except PipelineError as exc:
        sys.exit(f"{name}: {exc}")
