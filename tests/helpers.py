"""Helpers several test modules share: running `dvc` on a repository copy as a stage sees it,
and the tiny pipeline's params (fixtures live in conftest.py)."""

import os
import sys
from pathlib import Path

import yaml
from conftest import run_bounded


def dvc_env() -> dict[str, str]:
    """The environment a stage command sees: this venv's `python` first on PATH, and the MLflow
    store the repository's own (not one a developer's shell points at)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def dvc(repo: Path, *args: str) -> str:
    done = run_bounded([sys.executable, "-m", "dvc", *args], timeout=1200, cwd=repo,
                       env=dvc_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def tiny_pipeline_params(repo: Path, tiny_model_dir: Path) -> dict:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["model"]["name"] = str(tiny_model_dir)
    params["data"]["sizes"] = {"sft": 6, "rl": 4, "test": 3}
    params["benchmarks"]["quiz_max_items"] = 8
    params["benchmarks"]["quiz_tasks"] = ["world_capitals", "baby_animals"]  # fewer lm-eval tasks
    params["benchmarks"]["standard"] = {"piqa": 3, "lambada_openai": 2}
    params["precision"] = "fp32"
    params["rewriter"].update(num_generations=2, questions_per_device=1,
                              gradient_accumulation_steps=2, max_steps=2, save_steps=1,
                              embedder="policy", lambda_anchor=0.5)  # the anchor path too
    params["rewrite"].update(generation_batch_size=4, max_new_tokens=8)
    params["sft"].update(epochs=1.0, per_device_train_batch_size=4, max_length=96)
    params["evaluate"].update(limit=2, batch_size=4, quiz_variants=["mc", "mc_plain", "gen"])
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    return params
