"""The error boundary every stage script runs inside: `run_stage("sft", main)`."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rlrewrite.errors import PipelineError


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's `main`; an expected failure (a PipelineError) ends the process with one line,
    `<stage>: <what is wrong, naming the key or file>`, and exit status 1."""
    try:
        main()
    except PipelineError as exc:
        sys.exit(f"{name}: {exc}")
