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


def file_state(repo: Path) -> dict:
    return {name: (repo / name).read_bytes() if (repo / name).exists() else None
            for name in ("params.yaml", "dvc.lock", "prep.txt", "check.txt")}


@pytest.mark.slow
def test_a_second_run_is_refused_before_it_touches_anything_and_the_first_finishes(tmp_path):
    """The stage holds DVC's lock for its `dvc`: a second `dvc exp run` (plain or `--temp`, both
    stash the workspace and write their params into it) and a `dvc repro` fail in DVC's own lock
    check, leaving params.yaml, dvc.lock and every output as they were; the first run finishes
    with its own params and is recorded as an experiment."""
    repo, env = project(tmp_path)
    marks = Path(env["MARKS"])
    first = start_dvc(repo, env, "exp", "run", "-S", "seed=5", "-n", "first")
    wait_for(marks / "train-5", first)
    before = file_state(repo)
    assert b"seed: 5" in before["params.yaml"]

    guard = subprocess.run([sys.executable, "-m", "rlrewrite.workspace_lock"], cwd=repo, env=env,
                           capture_output=True, text=True)
    assert guard.returncode == 1 and f"in use by pid {first.pid}" in guard.stderr, guard

    for second in (("exp", "run", "-S", "seed=1"), ("exp", "run", "--temp", "-S", "seed=1"),
                   ("repro",)):
        proc = start_dvc(repo, env, *second)
        out = finish(proc)
        assert proc.returncode != 0 and "Unable to acquire lock" in out, (second, out)
        assert file_state(repo) == before, second

    (marks / "go-5").touch()
    out1 = finish(first)
    assert first.returncode == 0, out1
    assert (repo / "report.txt").read_text() == "check:5\nprep:5\ntrain:5\nreport:5\n"
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert lock["train"]["params"]["params.yaml"]["seed"] == 5
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=repo,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert '"first"' in shown
    # DVC's lock is free again once the run has ended
    (marks / "go-1").touch()
    after = start_dvc(repo, env, "exp", "run", "--temp", "-S", "seed=1", "-n", "temp-1")
    out = finish(after)
    assert after.returncode == 0, out


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


def test_a_stage_that_cannot_take_dvcs_lock_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time, zc.lockfile\n"
                               "lock = zc.lockfile.LockFile('.dvc/tmp/lock')\n"
                               "print('held', flush=True); time.sleep(120)"],
                              cwd=tmp_path, text=True, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(workspace_lock, "DVC_LOCK_WAIT_S", 0.0)
        with pytest.raises(PipelineError, match=r"held DVC's lock \(\.dvc/tmp/lock\).*'train'"):
            with workspace_lock.dvc_lock_held("train"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with workspace_lock.dvc_lock_held("train"):  # free again: taken, then given back
        assert (tmp_path / ".dvc/tmp/lock").exists()
    with workspace_lock.dvc_lock_held("train"):
        pass
