"""`launch.processes: 2`: the training stages under `accelerate launch` on this CPU (gloo), on the
tiny model, through `dvc repro` as a user runs them."""

import json
import signal
import subprocess
import sys
import time

import mlflow
import psutil
import pytest
import torch
import yaml
from conftest import copy_repo
from helpers import dvc, tiny_pipeline_params

from launch import command


def test_one_process_runs_the_script_itself_more_go_through_accelerate():
    assert command("src/sft.py", 1, None) is None  # the script runs in launch.py's process
    two = command("src/sft.py", 2, None)
    assert two[1:4] == ["-m", "accelerate.commands.launch", "--num_processes"]
    assert two[4] == "2" and "--multi_gpu" in two and two[-1] == "src/sft.py"
    deepspeed = command("src/sft.py", 8, "ds.yaml")
    assert deepspeed[deepspeed.index("--config_file") + 1] == "ds.yaml"
    assert "--multi_gpu" not in deepspeed  # the config file says how


RANK = ("from rlrewrite.ranks import die_with_launcher\n"
        "{call}\n"
        "import time; print('ready', flush=True); time.sleep(120)")
# a launcher that starts one rank in a session of its own, as torchrun does
LAUNCHER = ("import os, subprocess, sys\n"
            "os.environ['RLREWRITE_LAUNCH'] = str(os.getpid())\n"
            "rank = subprocess.Popen([sys.executable, '-c', sys.argv[1]], start_new_session=True)\n"
            "print(rank.pid, flush=True)\n"
            "rank.wait()")


def rank_outlives_a_killed_launcher(call: str) -> bool:
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, RANK.format(call=call)],
                                stdout=subprocess.PIPE, text=True)
    rank = psutil.Process(int(launcher.stdout.readline()))
    try:
        assert launcher.stdout.readline().strip() == "ready"
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not rank.is_running() or rank.status() == psutil.STATUS_ZOMBIE:
                return False
            time.sleep(0.1)
        return True
    finally:
        if rank.is_running():
            rank.kill()


def test_a_rank_dies_with_its_launcher():
    """What a SIGKILL to a multi-process stage's group leaves: ranks in sessions of their own."""
    assert rank_outlives_a_killed_launcher("pass")  # why die_with_launcher exists
    assert not rank_outlives_a_killed_launcher("die_with_launcher()")


def stage_losses(client, run_id: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, "loss"),
                                    key=lambda m: m.step)]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="two CPU processes over gloo")
def test_two_processes_train_the_rewriter_and_sft_like_one(tmp_path, tiny_model_dir):
    repo = copy_repo(tmp_path / "repo")
    params = tiny_pipeline_params(repo, tiny_model_dir)
    params["engine"] = "hf"
    params["launch"]["processes"] = 2
    params["data"]["sizes"] = {"sft": 8, "rl": 4, "test": 3}
    # the same global batch under both launches: 2 processes x 2 x 1 = 1 process x 2 x 2
    params["sft"].update(per_device_train_batch_size=2, gradient_accumulation_steps=1, epochs=1.0,
                         warmup_ratio=0.0)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    dvc(repo, "repro", "sft")
    rewriter = json.loads((repo / "metrics/rewriter.json").read_text())
    assert rewriter["steps"] == 2  # every reward call got whole groups, or split_groups raises
    assert rewriter["processes"] == 2
    assert (repo / "models/rewriter/adapter_config.json").exists()
    sft = json.loads((repo / "metrics/sft.json").read_text())
    assert (sft["steps"], sft["processes"]) == (2, 2)  # 8 examples / (2 processes x 2)

    params["launch"]["processes"] = 1
    params["sft"]["gradient_accumulation_steps"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    dvc(repo, "repro", "-s", "sft")
    sft = json.loads((repo / "metrics/sft.json").read_text())
    assert (sft["steps"], sft["processes"]) == (2, 1)

    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rl-rewriting")
    runs = [r for r in client.search_runs([experiment.experiment_id],
                                          order_by=["attributes.start_time ASC"])
            if r.data.tags.get("role") != "experiment"]
    stages = [r.data.tags["stage"] for r in runs]
    # one run per stage execution: the second process logs nothing
    assert stages == ["prepare", "rollout-and-train-rewriter", "rewrite", "sft", "sft"], stages
    assert all(r.info.status == "FINISHED" for r in runs)
    two, one = (stage_losses(client, r.info.run_id)
                for r in runs if r.data.tags["stage"] == "sft")
    assert len(two) == len(one) == 2
    assert two == pytest.approx(one, rel=1e-3), (two, one)  # measured: equal to 6 decimals
