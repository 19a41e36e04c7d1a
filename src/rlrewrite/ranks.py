"""The processes of a multi-process launch (src/launch.py): which one is the main one, and the
others dying with their launcher."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import psutil

LAUNCHED_BY = "RLREWRITE_LAUNCH"


def free_port() -> int:
    """A TCP port the OS hands out as free now (from its ephemeral range, so two jobs starting
    together do not both pick a well-known default such as torch.distributed's 29500)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_main_process() -> bool:
    """Rank 0 of a multi-process launch by src/launch.py (torchrun's RANK), or a single process
    (a RANK set by anything else, e.g. a cluster's pod environment, is not ours)."""
    return not os.environ.get(LAUNCHED_BY) or os.environ.get("RANK", "0") == "0"


def die_with_launcher() -> None:
    """In a process src/launch.py started: be killed when the launcher dies. torchrun starts each
    rank in a session of its own, so a SIGKILL to the stage's process group (DVC's, the OOM
    killer's, a test's) would reach the launcher only, and the ranks would train on into the
    checkpoints and outputs a rerun of the stage is writing."""
    launcher = os.environ.get(LAUNCHED_BY)
    if not launcher or not hasattr(signal, "SIGKILL") or not Path("/proc").is_dir():
        return
    import ctypes

    PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal this process gets when its parent dies
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if not psutil.pid_exists(int(launcher)):  # it died before the line above
        os._exit(1)
