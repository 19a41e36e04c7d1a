"""MLflow set-up shared by every stage.

The store is a sqlite file in the user's repository (`mlflow.db`), or `MLFLOW_TRACKING_URI` when
set. `dvc exp run --queue/--temp` executes stages in a temporary copy of the repository and sets
`DVC_ROOT` to the user's one, so relative locations resolve against `DVC_ROOT` and those runs land
in the same store. Artifacts go next to the store (`mlartifacts/`), for the same reason.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import mlflow

DEFAULT_EXPERIMENT = "rl-rewriting"


def project_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    root = project_root()
    if not uri:
        return f"sqlite:///{root / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute():
            return f"sqlite:///{root / path}"
    if "://" not in uri and not Path(uri).is_absolute():
        return str(root / uri)
    return uri


def git_revision(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value


def flatten(params: dict) -> dict:
    out: dict = {}
    _flatten("", params, out)
    return out


@contextmanager
def stage_run(stage: str, params: dict):
    """An MLflow run for one stage execution, tagged with the stage, git revision and DVC
    experiment name, with the stage's params logged flat (`data.sizes.sft`)."""
    root = project_root()
    mlflow.set_tracking_uri(tracking_uri())
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=(root / "mlartifacts").as_uri())
    mlflow.set_experiment(name)
    tags = {"stage": stage, "git_revision": git_revision(root)}
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    with mlflow.start_run(run_name=stage, tags=tags) as run:
        flat = flatten(params)
        mlflow.log_params({k: ("null" if v is None else v) for k, v in flat.items()})
        yield run
