"""A training stage SIGKILLed mid-run (no handler runs: the hardest case) resumes from its last
checkpoint on the next `dvc repro`, finishes, and leaves no MLflow run RUNNING."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import copy_repo, kill_group
from helpers import dvc, dvc_env, tiny_pipeline_params


def kill_after_checkpoint(repo: Path, stage: str, checkpoint: Path, timeout: float = 600) -> None:
    """Start `dvc repro STAGE`, SIGKILL its whole process group once `checkpoint` is complete."""
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", stage], cwd=repo, env=dvc_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not (checkpoint / "trainer_state.json").is_file():
            if proc.poll() is not None:
                pytest.fail(f"dvc repro {stage} ended (status {proc.returncode}) before {checkpoint}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {checkpoint} after {timeout} s")
            time.sleep(0.05)
    finally:
        kill_group(proc.pid)
        proc.wait()


def resumed_at(out: str, stage_dir: str) -> int:
    found = re.search(rf"resuming from checkpoints/{stage_dir}/checkpoint-(\d+)", out)
    assert found, out
    return int(found.group(1))


def first_logged_step(client, experiment_id: str, stage: str) -> int:
    """The first training step the stage's finished (resumed) MLflow run logged a loss for."""
    run, = client.search_runs([experiment_id],
                              f"tags.stage = '{stage}' and attributes.status = 'FINISHED'")
    return min(m.step for m in client.get_metric_history(run.info.run_id, "loss"))


@pytest.mark.slow
def test_killed_rewriter_and_sft_resume_and_no_run_stays_running(tmp_path, tiny_model_dir):
    repo = copy_repo(tmp_path / "repo")
    params = tiny_pipeline_params(repo, tiny_model_dir)
    params["engine"] = "hf"
    params["rewriter"].update(max_steps=6, save_steps=1)
    params["sft"].update(epochs=2.0, per_device_train_batch_size=1, gradient_accumulation_steps=1,
                         save_steps=1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))

    kill_after_checkpoint(repo, "rollout-and-train-rewriter",
                          repo / "checkpoints/rewriter/checkpoint-2")
    assert not (repo / "models/rewriter/adapter_config.json").exists()
    out = dvc(repo, "repro", "rollout-and-train-rewriter")
    rewriter_resumed_at = resumed_at(out, "rewriter")
    assert rewriter_resumed_at >= 2
    assert json.loads((repo / "metrics/rewriter.json").read_text())["steps"] == 6

    kill_after_checkpoint(repo, "sft", repo / "checkpoints/sft/checkpoint-3")
    out = dvc(repo, "repro", "sft")
    sft_resumed_at = resumed_at(out, "sft")
    assert sft_resumed_at >= 3
    sft = json.loads((repo / "metrics/sft.json").read_text())
    assert sft["steps"] == 6 * 2

    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rl-rewriting")
    runs = client.search_runs([experiment.experiment_id])
    statuses = sorted(r.info.status for r in runs)
    assert "RUNNING" not in statuses and statuses.count("KILLED") >= 2, statuses
    # the resumed runs trained on from their checkpoints, not from step 1
    assert first_logged_step(client, experiment.experiment_id, "rollout-and-train-rewriter") \
        == rewriter_resumed_at + 1
    assert first_logged_step(client, experiment.experiment_id, "sft") == sft_resumed_at + 1
