"""One run per workspace, one writer per checkpoint folder, no stage outliving its `dvc`.

A run is the `dvc` process (`dvc repro`, `dvc exp run`) that starts the stages, found among the
stage's ancestors (DVC runs a stage's command through a shell, so it may not be the parent).
DVC lets go of its repository lock (.dvc/tmp/lock) while a stage's command runs; the stage takes
it for its `dvc` meanwhile (`dvc_lock_held`), so a second `dvc exp run` or `dvc repro` in the
workspace is refused by DVC itself before it writes params.yaml or dvc.lock. Behind that, the
run's first stage records it in `.dvc/tmp/rlrewrite-workspace.lock` with a digest of params.yaml;
every later stage of the same run checks the digest, before and after its work, and a stage of
any other run is refused while the recorded process lives (its pid and command named): that
catches a second command that got in while DVC itself held the lock between two stages. A stage
run by hand is its own run, for its lifetime. A stage also stops (SIGTERM to itself, so its
MLflow run ends KILLED) when its `dvc` dies, and a checkpoint folder holds the pid of its one
writer (`claim_folder`).
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
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil

from rlrewrite.errors import PipelineError
from rlrewrite.ranks import is_main_process

WORKSPACE_LOCK = Path(".dvc/tmp/rlrewrite-workspace.lock")
WRITER_LOCK = "writer.lock"  # inside a checkpoint folder
PARAMS = Path("params.yaml")
POLL_S = 1.0  # how often a stage looks for its dvc
GRACE_S = 30.0  # after its SIGTERM, how long a stage whose dvc died may take to end
DVC_LOCK_WAIT_S = 30.0  # a `dvc status` or `dvc exp list` holds DVC's lock for a moment


class WorkspaceBusy(PipelineError):
    pass


def in_dvc_project() -> bool:
    return WORKSPACE_LOCK.parent.parent.is_dir()


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
    if not in_dvc_project():
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
def dvc_lock_held(stage: str):
    """DVC's repository lock, held for the `dvc` running this stage: DVC gives it up while a
    stage's command runs (dvc/stage/run.py runs it `unlocked_repo`, so that a command may call
    dvc), which let a second `dvc exp run` stash the workspace and write its params into
    params.yaml under the running stage. Taken with DVC's own lock class and config, so the
    second command fails in DVC's lock check before it changes anything; given back before the
    stage ends, for its `dvc` to take again."""
    from dvc.config import Config
    from dvc.lock import LockError, make_lock

    tmp = WORKSPACE_LOCK.parent
    hardlink = Config(dvc_dir=str(tmp.parent))["core"].get("hardlink_lock", False)
    lock = make_lock(str(tmp / "lock"), tmp_dir=str(tmp), hardlink_lock=hardlink)
    deadline = time.monotonic() + DVC_LOCK_WAIT_S
    while True:
        try:
            lock.lock()  # DVC's own retries: 3 s
            break
        except LockError:
            if time.monotonic() > deadline:
                raise WorkspaceBusy(
                    f"another dvc command has held DVC's lock ({tmp / 'lock'}) for "
                    f"{DVC_LOCK_WAIT_S:.0f} s while its `dvc` runs '{stage}': one run per "
                    f"workspace (docs/troubleshooting.md)") from None
    try:
        yield
    finally:
        lock.unlock()


@contextmanager
def one_run(stage: str):
    """A stage's work inside its run: DVC's lock held for its `dvc` (rank 0 of a multi-process
    launch), the workspace checked before and after the work, stopped if its dvc dies."""
    dvc = dvc_process()
    run = dvc or psutil.Process()
    with ExitStack() as held:
        if dvc is not None:
            stop_when_gone(stage, dvc)
            if is_main_process() and in_dvc_project():
                held.enter_context(dvc_lock_held(stage))
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
