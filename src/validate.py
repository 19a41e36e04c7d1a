"""Stage `validate`: params.yaml and every input the stages read, checked before any stage runs
(so before DVC deletes any output); writes data/validated.json, a digest of the inputs DVC does
not track itself (a local data file or model folder), which `prepare` depends on."""

from __future__ import annotations

from pathlib import Path

from rlrewrite.jsonl import write_json
from rlrewrite.stage import run_stage
from rlrewrite.validation import validate

STAMP = Path("data/validated.json")


def main() -> None:
    stamp = validate()
    write_json(STAMP, stamp)
    print(f"validate: params.yaml and inputs are valid ({stamp['inputs']})")


if __name__ == "__main__":
    run_stage("validate", main)
