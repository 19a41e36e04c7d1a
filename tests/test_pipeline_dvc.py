"""`dvc repro` of the pipeline in a temporary copy of the repository, on the tiny model."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import copy_repo, run_bounded
from helpers import dvc, tiny_pipeline_params

from rlrewrite.device import hardware


@pytest.mark.slow
@pytest.mark.vllm
def test_pipeline_runs_and_is_cached(tmp_path, tiny_vllm_model_dir):
    """The default DAG (`engine: vllm`: colocated vLLM rollouts, the rewriter merged and served
    by vLLM in `rewrite`, lm-eval's vllm backend in both evaluations), its cache, and which
    stages a param change reruns. The hf engine's pieces have their own tests."""
    repo = copy_repo(tmp_path / "repo")
    params = tiny_pipeline_params(repo, tiny_vllm_model_dir)
    assert params["engine"] == "vllm"

    out = dvc(repo, "repro")
    for stage in ("validate", "prepare", "rollout-and-train-rewriter", "rewrite-candidates",
                  "rewrite", "sft", "evaluate-base", "evaluate"):
        assert f"Running stage '{stage}'" in out
    assert (repo / "data/candidates/NOT_USED.json").exists()  # rl samples no pool
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

    assert (repo / "models/rewriter/adapter_config.json").exists()
    assert not (repo / "checkpoints/rewriter").exists()  # removed once the run completed
    rewriter = json.loads((repo / "metrics/rewriter.json").read_text())
    assert rewriter["trained"] is True and rewriter["steps"] == 2 and "reward_last_fifth" in rewriter
    assert rewriter["train_tokens"] > rewriter["generated_tokens"] > 0 and rewriter["train_s"] > 0
    rows = (repo / "metrics/rewriter_steps.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["step", "reward", "gate_pass_rate"] and len(rows) == 3
    assert "reward" in dvc(repo, "plots", "show", "--json")

    rewritten = [json.loads(line) for line in (repo / "data/rewritten/train.jsonl").read_text().splitlines()]
    assert len(rewritten) == 6 and {r["method"] for r in rewritten} == {"rl"}
    rewrite_metrics = json.loads((repo / "metrics/rewrite.json").read_text())
    assert set(rewrite_metrics) >= {"acceptance_rate", "fallback_rate", "attempts_mean",
                                    "qa_nll_targets", "qa_nll_original", "distinct_2",
                                    "self_bleu", "embedding_spread"}
    assert rewrite_metrics["generated_tokens"] > 0 and rewrite_metrics["engine"] == "vllm"

    assert (repo / "models/sft/config.json").exists()
    assert "base_model:" in (repo / "models/sft/README.md").read_text()  # the model cards
    assert "GRPO" in (repo / "models/rewriter/README.md").read_text()
    sft = json.loads((repo / "metrics/sft.json").read_text())
    assert sft["examples"] == 6 and sft["tokens_seen"] > sft["tokens_trained"] > 0
    assert sft["train_loss_first"] > 0
    curve = (repo / "metrics/sft_steps.tsv").read_text().splitlines()
    assert curve[0].split("\t") == ["step", "loss", "learning_rate"] and len(curve) == 1 + sft["steps"]
    evaluation = json.loads((repo / "metrics/eval.json").read_text())
    usage = {"time_s", "peak_rss_gib", "device", "hardware", "precision", "engine",
             "mlflow_run_id"}
    assert set(evaluation) == {"downstream", "general", "families", "forgetting",
                               "forgetting_mean", "flips"} | usage
    for stage in ("prepare", "rewriter", "rewrite", "sft", "eval_base", "eval"):
        recorded = json.loads((repo / f"metrics/{stage}.json").read_text())
        assert recorded["time_s"] > 0 and 0 < recorded["peak_rss_gib"] < 64, stage
        assert recorded["device"] == ("cuda" if torch.cuda.is_available() else "cpu"), stage
        assert recorded["hardware"] == hardware(), stage
        assert stage == "prepare" or recorded["precision"] == "fp32", stage
        assert recorded.get("engine") == (None if stage in ("prepare", "sft") else "vllm"), stage
    assert set(evaluation["downstream"]) >= {"base", "tuned", "gain", "ci95_low", "ci95_high",
                                             "truncated_tuned", "no_answer_tuned",
                                             "gold_nll_base", "gold_nll_shift"}
    quiz = [f"quiz_{t}" for t in params["benchmarks"]["quiz_tasks"]]
    assert set(evaluation["general"]) == set(quiz + [f"{t}_gen" for t in quiz]
                                             + [f"{t}_plain" for t in quiz]
                                             + ["std_piqa", "std_lambada_openai"])
    assert set(evaluation["families"]) == {"quiz", "quiz_plain", "standard"}
    # the continuous measure where every task of a family has options (not the generated quiz)
    assert "forgetting_logp" in evaluation["families"]["standard"]
    assert "forgetting_logp" in evaluation["families"]["quiz_plain"]
    assert "forgetting_logp" not in evaluation["families"]["quiz"]
    paired = json.loads((repo / "data/eval/items.json").read_text())["tasks"]
    assert evaluation["forgetting"]["items"] == sum(
        len(paired[t]["ids"]) for t in evaluation["general"])
    assert "forgetting_mean" in dvc(repo, "metrics", "show")

    again = dvc(repo, "repro")
    assert re.findall(r"Running stage '([^']+)'", again) == ["validate"]  # it always runs
    assert set(re.findall(r"Stage '([^']+)' didn't change, skipping", again)) == {
        "prepare", "rollout-and-train-rewriter", "rewrite-candidates", "rewrite", "sft",
        "evaluate-base", "evaluate"}

    # one MLflow parent run per experiment (the no-op repro adds none), its stages its children
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rl-rewriting")
    parent, = client.search_runs([experiment.experiment_id], "tags.role = 'experiment'")
    assert parent.data.tags["method"] == "rl" and parent.info.status == "FINISHED"
    assert "forgetting_mean" in parent.data.metrics
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 6 and all(c.info.status == "FINISHED" for c in children)

    # switching methods changes the rewriter stage (`original` trains nothing there) and
    # rewrite, and so what follows them, never the data or the base scores (test_compare_grid
    # runs other methods through DVC's queue)
    params["rewrite"]["method"] = "original"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(repo, "status")
    for stage in ("rollout-and-train-rewriter", "rewrite"):
        assert f"{stage}:" in out, out
    assert "prepare:" not in out and "evaluate-base:" not in out, out
    params["rewrite"]["method"] = "rl"

    # a rewriter-only change reruns the rewriter, not prepare
    params["rewriter"]["lambda_div"] = 0.25
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(repo, "status")
    assert "rollout-and-train-rewriter" in out and "prepare:" not in out

    # another SFT seed reruns SFT and its evaluation only: one rewrite output, several SFT runs
    params["rewriter"]["lambda_div"] = 0.5
    params["sft"]["seed"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(repo, "status")  # evaluate follows through models/sft, which status cannot know
    assert "sft:" in out, out
    for stage in ("prepare:", "rollout-and-train-rewriter:", "rewrite-candidates:", "rewrite:",
                  "evaluate-base:", "evaluate:"):
        assert stage not in out, out
    params["sft"]["seed"] = None

    # another training seed keeps the data and the base scores: items stay paired across seeds
    params["rewriter"]["lambda_div"] = 0.5
    params["seed"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(repo, "status")
    for stage in ("rollout-and-train-rewriter", "rewrite", "sft", "evaluate"):
        assert f"{stage}:" in out, out
    assert "prepare:" not in out and "evaluate-base:" not in out, out
    params["seed"], params["data"]["seed"] = 0, 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(repo, "status")
    assert "prepare:" in out and "evaluate-base:" in out, out

    # select: the pool is sampled once; another rule reruns only rewrite and what follows
    params["data"]["seed"] = 0
    params["rewrite"].update(method="select", temperature=0.7)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(repo, "repro", "rewrite")
    assert "Running stage 'rewrite-candidates'" in out and "Running stage 'rewrite'" in out
    assert "rewrite.method=select does not use the rewriter; nothing trained" in out, out
    pool = [json.loads(line) for line in (repo / "data/candidates/pool.jsonl").read_text().splitlines()]
    assert len(pool) == 6 and all(len(p["candidates"]) == 4 for p in pool)
    assert all(c["nll"] > 0 for p in pool for c in p["candidates"])
    assert any(c["tokens"] > 0 for p in pool for c in p["candidates"])
    chosen = [json.loads(line) for line in (repo / "data/rewritten/train.jsonl").read_text().splitlines()]
    assert {r["method"] for r in chosen} == {"select"} and len(chosen) == 6
    assert "pool_pass_rate" in json.loads((repo / "metrics/rewrite.json").read_text())
    params["rewrite"]["select"]["rule"] = "high"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(repo, "status")
    assert "rewrite:" in out and "rewrite-candidates:" not in out, out


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


def test_a_hung_command_is_killed_with_its_children_and_reports_its_output():
    """What keeps a hung stage from holding CI: the whole process group goes, output kept."""
    script = ("import subprocess, time; child = subprocess.Popen(['sleep', '120']); "
              "print('child', child.pid, flush=True); time.sleep(120)")
    with pytest.raises(AssertionError, match=r"(?s)still running after 8 s.*child \d+") as failed:
        run_bounded([sys.executable, "-c", script], timeout=8)
    pid = int(re.search(r"^child (\d+)$", str(failed.value), re.M).group(1))
    time.sleep(0.5)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z")  # or a zombie its new parent has not reaped yet
