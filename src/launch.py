"""Start a training stage's script with the processes `launch` asks for (params.yaml):

    python src/launch.py STAGE SCRIPT

One process and no config file: the script runs in this process. Otherwise `accelerate launch`
starts `processes` copies on this machine (`--multi_gpu` over torchrun: NCCL on GPUs, gloo on
CPUs, where the trainers set `use_cpu`), or, with `config_file`, as that accelerate config says
(DeepSpeed ZeRO-1/2, DDP settings), `processes` overriding its `num_processes`. The copies are
marked (LAUNCHED_BY) so that only rank 0 logs and writes, and so that they die with the launcher."""

from __future__ import annotations

import os
import sys

from rlrewrite.ranks import LAUNCHED_BY, free_port
from rlrewrite.stage import run_stage
from rlrewrite.stage_params import load_stage_params


def command(script: str, processes: int, config_file: str | None) -> list[str] | None:
    """The `accelerate launch` command line, or None where the script runs in this process."""
    if processes == 1 and config_file is None:
        return None
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes)]
    if config_file is not None:
        cmd += ["--config_file", config_file]
    else:
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no",
                "--dynamo_backend", "no",  # precision is each stage's own param
                "--main_process_port", str(free_port())]  # not 29500: another job may hold it
    return cmd + [script]


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: python src/launch.py STAGE SCRIPT")
    stage, script = sys.argv[1:]
    launch = load_stage_params(stage).launch
    cmd = command(script, launch.processes, launch.config_file)
    if cmd is None:
        os.environ.pop(LAUNCHED_BY, None)  # an inherited marker would make a rank of this process
        cmd = [sys.executable, script]
    else:
        os.environ[LAUNCHED_BY] = str(os.getpid())  # exec keeps the pid: the ranks' launcher
    os.execv(cmd[0], cmd)  # DVC's signals reach the stage itself (the ranks: die_with_launcher)


if __name__ == "__main__":
    run_stage("launch", main)
