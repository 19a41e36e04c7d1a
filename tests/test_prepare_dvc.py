"""`dvc repro` of the prepare stage in a temporary copy of the repository, with small sizes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import copy_repo


def dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_prepare_stage_runs_and_is_cached(tmp_path, tiny_model_dir):
    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["model"]["name"] = str(tiny_model_dir)
    params["data"]["sizes"] = {"sft": 6, "rl": 4, "test": 3}
    params["benchmarks"]["quiz_max_items"] = 8
    (repo / "params.yaml").write_text(yaml.safe_dump(params))

    out = dvc(repo, "repro")
    assert "Running stage 'prepare'" in out
    assert (repo / "models/base/config.json").exists()
    sizes = {s: len((repo / f"data/prepared/{s}.jsonl").read_text().splitlines())
             for s in ("sft", "rl", "test")}
    assert sizes == {"sft": 6, "rl": 4, "test": 3}
    metrics = json.loads((repo / "metrics/prepare.json").read_text())
    assert metrics["sft_size"] == 6 and metrics["collisions_dropped"] == 0
    assert metrics["sft_solution_tokens_mean"] > 10
    for task in params["benchmarks"]["quiz_tasks"]:
        assert (repo / f"data/benchmarks/tasks/quiz_{task}.yaml").exists()
        assert (repo / f"data/benchmarks/quiz_{task}.jsonl").exists()
    assert (repo / "mlflow.db").exists()

    again = dvc(repo, "repro")
    assert "Running stage" not in again
    assert "up to date" in again


@pytest.mark.slow
def test_prepare_reports_bad_params_key(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["sizes"]["sft"] = "four hundred"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "src/prepare.py"], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "params.yaml: key 'data.sizes.sft'" in done.stderr
