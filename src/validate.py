"""Stage `validate`: params.yaml and every input the stages read, checked before any stage runs
(so before DVC deletes any output); writes data/validated.json, a digest of the inputs DVC does
not track itself (a local data file or model folder), which `prepare` depends on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rlrewrite.config import ParamsError
from rlrewrite.jsonl import write_json
from rlrewrite.stage import run_stage
from rlrewrite.validation import validate

STAMP = Path("data/validated.json")


def uncommitted_params() -> str:
    """A hint when params.yaml differs from the last commit: `dvc exp run -S key=bad` writes the
    bad value there and leaves it after the run fails (the user's own edits must stay, so the
    file is not reset here)."""
    status = subprocess.run(["git", "status", "--porcelain", "--", "params.yaml"],
                            capture_output=True, text=True)
    changed = status.returncode == 0 and "M" in status.stdout[:2]  # modified since HEAD
    return (" (params.yaml differs from the last commit, e.g. a value `dvc exp run -S` wrote: "
            "`git diff params.yaml` shows it, `git checkout params.yaml` restores the committed "
            "one)") if changed else ""


def main() -> None:
    try:
        stamp = validate()
    except ParamsError as exc:
        raise ParamsError(f"{exc}{uncommitted_params()}") from None
    write_json(STAMP, stamp)
    print(f"validate: params.yaml and inputs are valid ({stamp['inputs']})")


if __name__ == "__main__":
    run_stage("validate", main)
