"""One run per workspace, no stage outliving its `dvc`, one writer per checkpoint folder
(rlrewrite/workspace_lock.py), on a tiny DVC project whose stages are small scripts around
`run_stage`: check -> prep -> train (waits for a go file) -> report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import psutil
import pytest
import yaml
from conftest import REPO, kill_group

from rlrewrite import workspace_lock
from rlrewrite.errors import PipelineError
from rlrewrite.train.checkpoints import prepare_checkpoint_dir

STAGE = """\
import os, sys, time
from pathlib import Path
import yaml
from rlrewrite.stage import run_stage

MARKS = Path(os.environ["MARKS"])

def train(seed):
    from rlrewrite.tracking import stage_run
    with stage_run("train", {"seed": seed}) as run:
        (MARKS / f"train-{seed}").write_text(f"{os.getpid()} {run.info.run_id}")
        deadline = time.monotonic() + 120
        while not (MARKS / f"go-{seed}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

def main():
    seed = yaml.safe_load(open("params.yaml"))["seed"]
    name = sys.argv[1]
    if name == "train":
        train(seed)
    before = Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else ""
    Path(f"{name}.txt").write_text(before + f"{name}:{seed}\\n")

run_stage(sys.argv[1], main)
"""


def stage(name: str, dep: str | None = None, cmd_tail: str = "") -> dict:
    spec = {"cmd": f"python stage.py {name}{' ' + dep if dep else ''}{cmd_tail}",
            "params": ["seed"], "outs": [f"{name}.txt"]}
    if dep:
        spec["deps"] = [dep]
    else:
        spec["always_changed"] = True
    return spec


def project(tmp_path: Path, cmd_tail: str = "") -> tuple[Path, dict]:
    repo, marks = tmp_path / "repo", tmp_path / "marks"
    repo.mkdir()
    marks.mkdir()
    (repo / "stage.py").write_text(STAGE)
    (repo / "params.yaml").write_text("seed: 0\n")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "check": stage("check"), "prep": stage("prep", "check.txt"),
        "train": stage("train", "prep.txt", cmd_tail), "report": stage("report", "train.txt")}},
        sort_keys=False))
    (repo / ".gitignore").write_text("mlartifacts/\n")
    env = {**os.environ, "MARKS": str(marks), "PYTHONPATH": str(REPO / "src"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "SHELL": "/bin/sh"}
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"],
                [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return repo, env


def start_dvc(repo: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dvc", *args], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"ended before {path.name}:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            kill_group(proc.pid)
            pytest.fail(f"no {path.name} after {timeout} s")
        time.sleep(0.1)
    time.sleep(0.2)  # written
    return path.read_text()


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc.pid)
    return out


@pytest.mark.slow
def test_a_second_workspace_run_is_refused_and_the_first_never_trains_on_its_params(tmp_path):
    """What DVC lets through: the second `dvc exp run` rewrites params.yaml before any stage runs.
    Its first stage is refused, naming the first run's pid; the first run's training stage then
    stops instead of recording outputs under the other seed."""
    repo, env = project(tmp_path)
    marks = Path(env["MARKS"])
    first = start_dvc(repo, env, "exp", "run", "-S", "seed=5")
    wait_for(marks / "train-5", first)

    guard = subprocess.run([sys.executable, "-m", "rlrewrite.workspace_lock"], cwd=repo, env=env,
                           capture_output=True, text=True)
    assert guard.returncode == 1 and f"in use by pid {first.pid}" in guard.stderr, guard

    second = start_dvc(repo, env, "exp", "run", "-S", "seed=1")
    out2 = finish(second)
    assert second.returncode != 0
    assert f"check: this workspace is in use by pid {first.pid}" in out2, out2
    assert "seed: 1" in (repo / "params.yaml").read_text()  # DVC wrote it: out of our hands

    (marks / "go-5").touch()
    out1 = finish(first)
    assert first.returncode != 0
    assert "train: params.yaml changed since this run's stage 'check' started" in out1, out1
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert lock.get("train", {}).get("params", {}).get("params.yaml", {}).get("seed") != 1
    # its work was done when the check failed: the MLflow run says FAILED, and why
    run_id = (marks / "train-5").read_text().split()[1]
    train_run = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(run_id)
    assert train_run.info.status == "FAILED"
    assert "params.yaml changed" in train_run.data.tags["failure"]


@pytest.mark.slow
def test_with_temp_the_second_run_goes_elsewhere_and_the_first_keeps_its_params(tmp_path):
    """DVC's own mechanism: `--temp` runs in a copy under .dvc/tmp/exps; both finish, each with
    its own seed."""
    repo, env = project(tmp_path)
    marks = Path(env["MARKS"])
    first = start_dvc(repo, env, "exp", "run", "-S", "seed=5")
    wait_for(marks / "train-5", first)

    (marks / "go-1").touch()
    second = start_dvc(repo, env, "exp", "run", "--temp", "-S", "seed=1", "-n", "temp-1")
    out2 = finish(second)
    assert second.returncode == 0, out2

    (marks / "go-5").touch()
    out1 = finish(first)
    assert first.returncode == 0, out1
    assert (repo / "report.txt").read_text() == "check:5\nprep:5\ntrain:5\nreport:5\n"
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=repo,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert "temp-1" in shown


@pytest.mark.slow
def test_a_stage_dies_with_its_dvc_and_its_mlflow_run_ends_killed(tmp_path):
    """SIGTERM to `dvc repro` alone (as `timeout` sends it): the stage, started through a shell
    (`; true` keeps the shell between them), stops within seconds, its MLflow run KILLED."""
    repo, env = project(tmp_path, cmd_tail="; true")
    dvc = start_dvc(repo, env, "repro", "train")
    stage_pid, run_id = wait_for(Path(env["MARKS"]) / "train-0", dvc).split()
    stage_proc = psutil.Process(int(stage_pid))
    assert stage_proc.parent().pid != dvc.pid  # the shell sits between them

    dvc.send_signal(signal.SIGTERM)
    dvc.wait(timeout=30)
    try:
        stage_proc.wait(timeout=30)  # POLL_S, then the KILLED bookkeeping
    except psutil.TimeoutExpired:
        stage_proc.kill()
        pytest.fail("the stage outlived its dvc")
    finally:
        kill_group(dvc.pid)
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    assert client.get_run(run_id).info.status == "KILLED"


HOLDER = """\
import sys, time
from pathlib import Path
from rlrewrite.workspace_lock import claim_folder
claim_folder(Path(sys.argv[1]))
print("claimed", flush=True)
time.sleep(120)
"""


def test_a_checkpoint_folder_has_one_writer_and_a_dead_ones_lock_is_taken_over(tmp_path):
    folder = tmp_path / "checkpoints" / "sft"
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], text=True,
                              stdout=subprocess.PIPE, env={**os.environ,
                                                           "PYTHONPATH": str(REPO / "src")})
    try:
        assert holder.stdout.readline().strip() == "claimed"
        with pytest.raises(PipelineError, match=f"in use by pid {holder.pid} "):
            prepare_checkpoint_dir(folder, "key")
    finally:
        holder.kill()
        holder.wait()
    assert prepare_checkpoint_dir(folder, "key") is None  # the dead writer's lock: taken over
    lock = json.loads((folder / workspace_lock.WRITER_LOCK).read_text())
    assert lock["pid"] == os.getpid()
    (folder / "checkpoint-1").mkdir()
    assert prepare_checkpoint_dir(folder, "other key") is None  # emptied, but for its lock
    assert sorted(p.name for p in folder.iterdir()) == ["fingerprint.txt", "writer.lock"]


def test_a_dead_runs_workspace_lock_is_taken_over_and_a_hand_run_gives_it_back(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {"pid": dead.pid, "started": time.time() - 5, "command": "dvc repro"}
    workspace_lock.WORKSPACE_LOCK.write_text(json.dumps(stale))
    with workspace_lock.one_run("check"):
        record = json.loads(workspace_lock.WORKSPACE_LOCK.read_text())
        assert record["pid"] == os.getpid() and record["first_stage"] == "check"
        (tmp_path / "params.yaml").write_text("seed: 1\n")
        with pytest.raises(PipelineError, match="params.yaml changed"):
            workspace_lock.check_run("check", psutil.Process())
        (tmp_path / "params.yaml").write_text("seed: 0\n")
    assert workspace_lock.WORKSPACE_LOCK.read_text() == ""
