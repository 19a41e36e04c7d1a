"""One run per workspace, one writer per checkpoint folder, no stage outliving its `dvc`.

A run is the `dvc` process (`dvc repro`, `dvc exp run`) that starts the stages, found among the
stage's ancestors (DVC runs a stage's command through a shell, so it may not be the parent).
Its first stage records it in `.dvc/tmp/rlrewrite-workspace.lock` with a digest of params.yaml;
every later stage of the same run checks the digest, before and after its work, and a stage of
any other run is refused while the recorded process lives (its pid and command named). A stage
run by hand is its own run, for its lifetime. The check cannot come before DVC itself: a second
`dvc exp run` in the workspace rewrites params.yaml before any stage runs, so this detects (the
first run stops) rather than prevents that; `dvc exp run --temp/--queue` runs elsewhere
(docs/troubleshooting.md). A stage also stops (SIGTERM to itself, so its MLflow run ends KILLED)
when its `dvc` dies, and a checkpoint folder holds the pid of its one writer (`claim_folder`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from rlrewrite.errors import PipelineError

WORKSPACE_LOCK = Path(".dvc/tmp/rlrewrite-workspace.lock")
WRITER_LOCK = "writer.lock"  # inside a checkpoint folder
PARAMS = Path("params.yaml")
POLL_S = 1.0  # how often a stage looks for its dvc
GRACE_S = 30.0  # after its SIGTERM, how long a stage whose dvc died may take to end


class WorkspaceBusy(PipelineError):
    pass


def dvc_process() -> psutil.Process | None:
    """The nearest ancestor that is `dvc` (`dvc ...`, `python .../bin/dvc ...`,
    `python -m dvc ...`), or None (a stage run by hand)."""
    for proc in psutil.Process().parents():
        try:
            if "dvc" in (os.path.basename(arg) for arg in proc.cmdline()[:3]):
                return proc
        except psutil.Error:
            continue
    return None


def _alive(proc: psutil.Process) -> bool:
    try:  # is_running() also notices a reused pid; a zombie has ended
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _owner(record: dict) -> psutil.Process | None:
    """The live process a lock record names (same pid and start time), or None."""
    try:
        proc = psutil.Process(int(record["pid"]))
        same = abs(proc.create_time() - float(record["started"])) < 0.01
    except (KeyError, TypeError, ValueError, psutil.Error):
        return None
    return proc if same and _alive(proc) else None


def _record(proc: psutil.Process, **extra) -> dict:
    try:
        command = " ".join(proc.cmdline())
    except psutil.Error:
        command = "?"
    return {"pid": proc.pid, "started": proc.create_time(), "command": command, **extra}


@contextmanager
def _locked(path: Path):
    """`path` opened and flock'ed, for one read-check-write of its JSON record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        handle.seek(0)
        try:
            record = json.loads(handle.read() or "{}")
        except ValueError:
            record = {}

        def write(new: dict | None) -> None:
            handle.seek(0)
            handle.truncate()
            if new is not None:
                handle.write(json.dumps(new) + "\n")
                handle.flush()

        yield record, write


def _busy(what: str, record: dict) -> str:
    return f"{what} is in use by pid {record['pid']} ({record['command']})"


def params_digest() -> str:
    return hashlib.sha256(PARAMS.read_bytes() if PARAMS.is_file() else b"").hexdigest()


def check_run(stage: str, run: psutil.Process) -> None:
    """Take the workspace for `run` (its first stage), or check it holds it with params.yaml as it
    was then; any other live run: WorkspaceBusy. Outside a DVC project: nothing to do."""
    if not WORKSPACE_LOCK.parent.parent.is_dir():
        return
    digest = params_digest()
    with _locked(WORKSPACE_LOCK) as (record, write):
        owner = _owner(record)
        if owner is None:
            write(_record(run, params_sha256=digest, first_stage=stage))
        elif owner.pid != run.pid:
            raise WorkspaceBusy(f"{_busy('this workspace', record)}: one run per workspace; wait "
                                f"for it, or run experiments with `dvc exp run --temp` or "
                                f"`--queue` (docs/troubleshooting.md)")
        elif record.get("params_sha256") != digest:
            raise WorkspaceBusy(f"params.yaml changed since this run's stage "
                                f"'{record.get('first_stage')}' started (another command wrote "
                                f"it, e.g. a second `dvc exp run` in this workspace): stopping "
                                f"rather than going on with other params")


def release_run(run: psutil.Process) -> None:
    """Give the workspace back if `run` holds it (a stage run by hand, at its end)."""
    if WORKSPACE_LOCK.is_file():
        with _locked(WORKSPACE_LOCK) as (record, write):
            if record.get("pid") == run.pid:
                write(None)


def claim_folder(folder: Path) -> None:
    """Make this process the one writer of `folder` (a lock file in it holding its pid); a live
    other writer: WorkspaceBusy naming its pid. A writer that died is taken over."""
    with _locked(folder / WRITER_LOCK) as (record, write):
        owner = _owner(record)
        if owner is not None and owner.pid != os.getpid():
            raise WorkspaceBusy(f"{_busy(str(folder), record)}: one writer per checkpoint folder")
        write(_record(psutil.Process()))


def stop_when_gone(stage: str, run: psutil.Process) -> None:
    """A daemon thread: once `run` has ended, SIGTERM this process (a stage run ends KILLED,
    tracking.py), and exit after GRACE_S if that did not end it."""
    def watch() -> None:
        while _alive(run):
            time.sleep(POLL_S)
        print(f"{stage}: dvc (pid {run.pid}) that started this stage is gone; stopping",
              file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE_S)
        os._exit(1)

    threading.Thread(target=watch, name="dvc-watcher", daemon=True).start()


@contextmanager
def one_run(stage: str):
    """A stage's work inside its run: the workspace checked before and after it, stopped if its
    dvc dies."""
    dvc = dvc_process()
    run = dvc or psutil.Process()
    if dvc is not None:
        stop_when_gone(stage, dvc)
    check_run(stage, run)
    try:
        yield
        check_run(stage, run)  # outputs made while params.yaml changed are not recorded
    finally:
        if dvc is None:
            release_run(run)


def main() -> None:
    """`python -m rlrewrite.workspace_lock`: exit 1 naming the run that holds this workspace."""
    if WORKSPACE_LOCK.is_file():
        with _locked(WORKSPACE_LOCK) as (record, _):
            if _owner(record) is not None:
                sys.exit(_busy("this workspace", record) + "; see docs/troubleshooting.md")


if __name__ == "__main__":
    main()
