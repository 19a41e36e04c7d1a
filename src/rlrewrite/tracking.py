"""MLflow set-up shared by every stage.

Each stage execution is a run, the child of one parent run per DVC experiment (named after it,
`DVC_EXP_NAME`; `workspace-<params digest>` for a plain `dvc repro`). The parent carries the
project's params (params.yaml, flat), tags (method, seed, data seed, engine, git revision) and the
headline metrics of every stage upstream of the one running, read from their metrics files, so
a stage DVC restored from its run-cache still shows: its metrics file names the run that made it
(`mlflow_run_id`), which the parent links as the tag `run.<stage>`. The parent's status follows
its latest stage.

The store is a sqlite file in the user's repository (`mlflow.db`), or `MLFLOW_TRACKING_URI` when
set. A stage's run ends FINISHED, FAILED (an exception) or KILLED (Ctrl-C, SIGTERM); a run left
RUNNING by a SIGKILLed process is closed as KILLED, with its parent, when any stage next starts on the same host. `dvc exp run --queue/--temp` executes stages in a temporary copy of the repository and sets
`DVC_ROOT` to the user's one, so relative locations resolve against `DVC_ROOT` and those runs land
in the same store. Artifacts go next to the store (`mlartifacts/`), for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path

import mlflow
import psutil
import yaml
from mlflow.entities import Param

from rlrewrite.config import flatten
from rlrewrite.dag import DVC_YAML, stage_graph, upstream
from rlrewrite.ranks import is_main_process

DEFAULT_EXPERIMENT = "rl-rewriting"
# a model-training experiment: MLflow 3 otherwise opens it in its GenAI view
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
PARAMS_FILE = Path("params.yaml")
# set by src/launch.py, to its own pid, for the processes it starts
# metrics file -> {dotted key in it: metric name on the parent run}
HEADLINE = {
    "metrics/rewriter.json": {"reward_last_fifth": "rewriter/reward_last_fifth",
                              "gate_pass_rate_last_fifth": "rewriter/gate_pass_rate_last_fifth"},
    "metrics/rewrite.json": {"acceptance_rate": "rewrite/acceptance_rate",
                             "qa_nll_shift": "rewrite/qa_nll_shift",
                             "distinct_2": "rewrite/distinct_2",
                             "embedding_spread": "rewrite/embedding_spread"},
    "metrics/sft.json": {"train_loss_final": "sft/train_loss_final"},
    "metrics/eval.json": {"downstream.base": "downstream/base",
                          "downstream.tuned": "downstream/tuned",
                          "downstream.gain": "downstream/gain",
                          "downstream.gold_nll_shift": "downstream/gold_nll_shift",
                          "forgetting_mean": "forgetting_mean",
                          "families.standard.forgetting": "forgetting/standard",
                          "families.quiz.forgetting": "forgetting/quiz"},
}


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


def _dig(values: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def experiment_identity(params_file: Path = PARAMS_FILE) -> tuple[str, str, dict]:
    """(parent run name, params digest, params) of the experiment this stage belongs to."""
    text = params_file.read_bytes() if params_file.is_file() else b""
    digest = hashlib.sha256(text).hexdigest()[:12]
    name = os.environ.get("DVC_EXP_NAME") or f"workspace-{digest[:8]}"
    return name, digest, yaml.safe_load(text) or {}


def parent_run(client, experiment_id: str, root: Path) -> str:
    """The id of this experiment's parent run, created on its first stage."""
    name, digest, params = experiment_identity()
    found = client.search_runs([experiment_id], f"tags.role = 'experiment' and "
                               f"tags.dvc_experiment = '{name}' and tags.params_digest = '{digest}'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    tags = {"role": "experiment", "dvc_experiment": name, "params_digest": digest,
            "git_revision": git_revision(root),
            "method": str(_dig(params, "rewrite.method")), "seed": str(params.get("seed")),
            "data_seed": str(_dig(params, "data.seed")), "engine": str(params.get("engine"))}
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    logged = [Param(key, "null" if value is None else str(value))
              for key, value in flatten(params).items()]
    for start in range(0, len(logged), 100):  # MLflow's batch limit
        client.log_batch(run.info.run_id, params=logged[start:start + 100])
    return run.info.run_id


def sync_parent(client, parent_id: str, stages: list[str], graph: dict[str, dict]) -> None:
    """Headline metrics and run links of `stages` (from their metrics files) onto the parent."""
    for stage in stages:
        for path in graph[stage]["metrics"]:
            file = Path(path)
            if not file.is_file():
                continue
            values = json.loads(file.read_text())
            if not isinstance(values, dict):
                continue
            if values.get("mlflow_run_id"):
                client.set_tag(parent_id, f"run.{stage}", values["mlflow_run_id"])
            for key, metric in HEADLINE.get(path, {}).items():
                value = _dig(values, key)
                if isinstance(value, (int, float)):
                    client.log_metric(parent_id, metric, value)


def run_reference() -> dict:
    """{"mlflow_run_id": the active run}, for a stage's metrics file: a stage restored from
    DVC's run-cache so still names the run that produced it."""
    run = mlflow.active_run()
    return {"mlflow_run_id": run.info.run_id} if run is not None else {}


class StageTerminated(KeyboardInterrupt):
    """SIGTERM (e.g. `kill`, a scheduler's stop, `dvc queue kill`) arrived during a stage."""


def _raise_terminated(signum, frame):
    raise StageTerminated(f"signal {signum}")


def close_orphaned_runs(experiment_id: str) -> list[str]:
    """RUNNING stage runs started on this host by a process that no longer exists (it was
    SIGKILLed or the machine lost power): ended as KILLED, and their parent runs with them.
    Returns the stage runs' ids."""
    client = mlflow.MlflowClient()
    runs = client.search_runs([experiment_id], f"attributes.status = 'RUNNING' and "
                              f"tags.host = '{socket.gethostname()}'")
    closed = []
    for run in runs:
        pid = int(run.data.tags.get("pid", "0") or 0)
        alive = pid > 0 and psutil.pid_exists(pid) and pid != os.getpid()
        if not alive:
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
            parent = run.data.tags.get("mlflow.parentRunId")
            if parent and client.get_run(parent).info.status == "RUNNING":
                client.set_terminated(parent, "KILLED")
    return closed


_FINISHED: list[tuple[str, str]] = []  # (stage run, parent run) this process ended FINISHED


def fail_finished_runs(reason: str) -> None:
    """The stage's work finished but a check after it failed (rlrewrite/stage.py): the MLflow
    runs it ended FINISHED are set to FAILED, the reason in a `failure` tag."""
    if not _FINISHED:
        return
    client = mlflow.MlflowClient()
    for run_id, parent_id in _FINISHED:
        client.set_tag(run_id, "failure", reason[:5000])
        client.set_terminated(run_id, "FAILED")
        client.set_terminated(parent_id, "FAILED")
    _FINISHED.clear()


@contextmanager
def stage_run(stage: str, params: dict):
    """An MLflow run for one stage execution, the child of its experiment's parent run, tagged
    with the stage, git revision and DVC experiment name, with the stage's params logged flat
    (`data.sizes.sft`). Under a multi-process launch only the main process has one (the others
    get None)."""
    if not is_main_process():
        yield None
        return
    with _stage_run(stage, params) as run:
        yield run


@contextmanager
def _stage_run(stage: str, params: dict):
    root = project_root()
    mlflow.set_tracking_uri(tracking_uri())
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=(root / "mlartifacts").as_uri())
    experiment = mlflow.set_experiment(name)
    client = mlflow.MlflowClient()
    if experiment.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
        client.set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
    close_orphaned_runs(experiment.experiment_id)
    graph = stage_graph() if DVC_YAML.is_file() else {}
    parent_id = parent_run(client, experiment.experiment_id, root)
    before = upstream(stage, graph) if stage in graph else []
    sync_parent(client, parent_id, before, graph)
    client.update_run(parent_id, status="RUNNING")
    tags = {"stage": stage, "git_revision": git_revision(root), "host": socket.gethostname(),
            "pid": str(os.getpid())}
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    status = "FAILED"
    try:
        with mlflow.start_run(run_name=stage, tags=tags, parent_run_id=parent_id) as run:
            flat = flatten(params)
            mlflow.log_params({k: ("null" if v is None else v) for k, v in flat.items()})
            try:
                yield run
                status = "FINISHED"
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM
                status = "KILLED"
                mlflow.end_run("KILLED")
                raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if status == "FINISHED" and stage in graph:
            sync_parent(client, parent_id, before + [stage], graph)
        client.set_terminated(parent_id, status)
        if status == "FINISHED":
            _FINISHED.append((run.info.run_id, parent_id))
