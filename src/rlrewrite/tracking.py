"""MLflow set-up shared by every stage.

The store is a sqlite file in the user's repository (`mlflow.db`), or `MLFLOW_TRACKING_URI` when
set. A stage's run ends FINISHED, FAILED (an exception) or KILLED (Ctrl-C, SIGTERM); a run left
RUNNING by a SIGKILLed process is closed as KILLED when that stage next starts on the same host. `dvc exp run --queue/--temp` executes stages in a temporary copy of the repository and sets
`DVC_ROOT` to the user's one, so relative locations resolve against `DVC_ROOT` and those runs land
in the same store. Artifacts go next to the store (`mlartifacts/`), for the same reason.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path

import mlflow
import psutil

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


class StageTerminated(KeyboardInterrupt):
    """SIGTERM (e.g. `kill`, a scheduler's stop, `dvc queue kill`) arrived during a stage."""


def _raise_terminated(signum, frame):
    raise StageTerminated(f"signal {signum}")


def close_orphaned_runs(experiment_id: str, stage: str) -> list[str]:
    """RUNNING runs of `stage` started on this host by a process that no longer exists (it was
    SIGKILLed or the machine lost power): ended as KILLED. Returns their ids."""
    client = mlflow.MlflowClient()
    runs = client.search_runs([experiment_id], f"tags.stage = '{stage}' and "
                              f"attributes.status = 'RUNNING' and tags.host = '{socket.gethostname()}'")
    closed = []
    for run in runs:
        pid = int(run.data.tags.get("pid", "0") or 0)
        alive = pid > 0 and psutil.pid_exists(pid) and pid != os.getpid()
        if not alive:
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
    return closed


@contextmanager
def stage_run(stage: str, params: dict):
    """An MLflow run for one stage execution, tagged with the stage, git revision and DVC
    experiment name, with the stage's params logged flat (`data.sizes.sft`)."""
    root = project_root()
    mlflow.set_tracking_uri(tracking_uri())
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=(root / "mlartifacts").as_uri())
    experiment = mlflow.set_experiment(name)
    close_orphaned_runs(experiment.experiment_id, stage)
    tags = {"stage": stage, "git_revision": git_revision(root), "host": socket.gethostname(),
            "pid": str(os.getpid())}
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with mlflow.start_run(run_name=stage, tags=tags) as run:
            flat = flatten(params)
            mlflow.log_params({k: ("null" if v is None else v) for k, v in flat.items()})
            try:
                yield run
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM
                mlflow.end_run("KILLED")
                raise
    finally:
        signal.signal(signal.SIGTERM, previous)
