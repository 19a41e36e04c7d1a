"""The error boundary every stage script runs inside: `run_stage("sft", main)`."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rlrewrite.errors import PipelineError
from rlrewrite.workspace_lock import one_run


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's `main` as a stage of one run per workspace, stopped if the `dvc` that started
    it dies (rlrewrite/workspace_lock.py); an expected failure (a PipelineError) ends the process
    with one line, `<stage>: <what is wrong, naming the key or file>`, and exit status 1."""
    try:
        with one_run(name):
            main()
    except PipelineError as exc:
        sys.exit(f"{name}: {exc}")
