"""A methods x seeds grid through DVC's queue, the comparison report and the MLflow grouping,
on the tiny model with the `hf` engine (the vLLM path has its own pipeline test)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import psutil
import pytest
import yaml
from conftest import copy_repo
from helpers import dvc, dvc_env, tiny_pipeline_params

from rlrewrite.experiments import read_at

# two experiments, `prompt` paired with `original` at seed 0 (that another training seed keeps
# the data and base scores: test_pipeline_dvc; grouping seeds in the report: test_compare_report)
GRID = [("original", 0), ("prompt", 0)]


def start_queue_worker(repo: Path) -> None:
    """`dvc queue start`, its output to a file. The worker is a forked child, in a process group
    of its own, that keeps the starting command's stdout and stderr open while it runs: through
    a pipe, the command would seem to run until the queue is empty."""
    log = repo / "queue-start.log"
    with log.open("a") as out:
        done = subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "--jobs", "1"],
                              cwd=repo, env=dvc_env(), stdout=out, stderr=subprocess.STDOUT,
                              timeout=300)
    assert done.returncode == 0, log.read_text()


def processes_in(repo: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if Path(proc.cwd()).is_relative_to(repo):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def stop_queue_worker(repo: Path) -> None:
    """`dvc queue stop --kill`, then kill what still runs in the repository: DVC's celery worker
    is detached from the tests' process tree and rewrites its own environment (its process
    title), so the session's sweep cannot find it, and it can idle on for half an hour."""
    subprocess.run([sys.executable, "-m", "dvc", "queue", "stop", "--kill"], cwd=repo,
                   env=dvc_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120, check=False)
    deadline = time.monotonic() + 30
    while processes_in(repo) and time.monotonic() < deadline:
        time.sleep(1)
    left = processes_in(repo)
    for proc in left:
        proc.kill()
    psutil.wait_procs(left, timeout=30)


def wait_for_queue(repo: Path, timeout: float = 2400) -> str:
    """Until nothing is queued or running. DVC's worker stops itself when its check of the queue
    goes unanswered, which a loaded machine can cause with experiments still queued; it is then
    restarted, as `make grid-run` does for a user."""
    deadline, idle_polls = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        status = dvc(repo, "queue", "status")
        if "Queued" not in status and "Running" not in status:
            return status
        # a busy worker can miss one status ping: restart only after three quiet polls in a row
        idle = "Running" not in status and "Worker status: 0 active, 0 idle" in status
        idle_polls = idle_polls + 1 if idle else 0
        if idle_polls == 3:
            start_queue_worker(repo)
            idle_polls = 0
        time.sleep(10)  # each poll is a `dvc` process: ~0.6 s of CPU the stages lack
    raise AssertionError(f"queue still busy after {timeout} s:\n{status}")


@pytest.mark.slow
@pytest.mark.timeout(3000)  # two experiments: ~2.5 min alone, 3x that beside the other test worker
def test_a_queued_grid_is_paired_reported_and_grouped_in_mlflow(tmp_path, tiny_model_dir):
    repo = copy_repo(tmp_path / "repo")
    params = tiny_pipeline_params(repo, tiny_model_dir)
    params["engine"] = "hf"
    params["evaluate"]["quiz_variants"] = ["mc"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"],
                   cwd=repo, check=True)

    for method, seed in GRID:
        dvc(repo, "exp", "run", "--queue", "-n", f"{method}-s{seed}",
            "-S", f"rewrite.method={method}", "-S", f"seed={seed}")
    start_queue_worker(repo)
    try:
        status = wait_for_queue(repo)
    finally:
        stop_queue_worker(repo)
    assert not processes_in(repo)
    assert status.count("Success") == len(GRID), status

    # the same evaluation items, and the same base scores, in every experiment
    refs = json.loads(dvc(repo, "exp", "show", "--json"))
    exps = {e["name"]: e["revs"][0]["rev"] for b in refs for e in (b.get("experiments") or [])}
    assert set(exps) == {f"{m}-s{s}" for m, s in GRID}
    items = {name: json.loads(read_at(rev, "data/eval/items.json", repo))
             for name, rev in exps.items()}
    first = next(iter(items.values()))["tasks"]
    for other in items.values():
        assert {t: (v["ids"], v["base"]) for t, v in other["tasks"].items()} == \
            {t: (v["ids"], v["base"]) for t, v in first.items()}

    out = subprocess.run([sys.executable, "-m", "rlrewrite.report", "comparison", "--resamples", "200"],
                         cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    table = (repo / "reports/comparison.md").read_text()
    assert "| original | 0 |" in table and "| prompt | 0 |" in table
    assert "Against `original`" in table and "[" in table  # intervals
    assert (repo / "reports/comparison.png").stat().st_size > 10_000
    # each experiment recorded with its per-item scores, as read from DVC's cache
    for name in exps:
        record = json.loads((repo / f"reports/runs/{name}.json").read_text())
        assert record["items"] == items[name] and record["precision"] == "fp32", name

    client = mlflow.MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rl-rewriting")
    parents = {r.info.run_name: r for r in client.search_runs(
        [experiment.experiment_id], "tags.role = 'experiment'")}
    assert set(parents) == set(exps)
    for name, parent in parents.items():
        assert parent.info.status == "FINISHED"
        assert {"downstream/gain", "forgetting_mean", "rewrite/acceptance_rate"} <= set(
            parent.data.metrics), name
        children = client.search_runs([experiment.experiment_id],
                                      f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        ran = {c.data.tags["stage"] for c in children}
        assert {"rewrite", "sft", "evaluate"} <= ran, (name, ran)
        # stages restored from the run-cache (prepare, evaluate-base) link
        linked = {k.removeprefix("run.") for k in parent.data.tags if k.startswith("run.")}
        assert linked == {"prepare", "rollout-and-train-rewriter", "rewrite", "sft",
                          "evaluate-base", "evaluate"}, (name, linked)
    seeds = {p.data.tags["seed"] for p in parents.values()}
    assert seeds == {"0"}
    # DVC's run-cache: the data and base scores once; the rewriter stage once per method and
    # seed, training nothing (only `rl` uses a rewriter)
    ran = [r.data.tags["stage"] for r in client.search_runs([experiment.experiment_id])
           if "stage" in r.data.tags]
    assert ran.count("prepare") == ran.count("evaluate-base") == 1, ran
    assert ran.count("rollout-and-train-rewriter") == ran.count("evaluate") == len(GRID), ran
    for name, rev in exps.items():
        assert json.loads(read_at(rev, "metrics/rewriter.json", repo))["trained"] is False, name
        skipped = json.loads(read_at(rev, "models/rewriter/NOT_TRAINED.json", repo))
        assert skipped["method"] == name.split("-")[0], name
        assert read_at(rev, "models/rewriter/adapter_config.json", repo) is None, name

    # `original` trains on the expert solutions as they are, in the prepared order
    rev = exps["original-s0"]
    sft_ids = [json.loads(line)["id"] for line in read_at(rev, "data/prepared/sft.jsonl", repo).splitlines()]
    rows = [json.loads(line) for line in read_at(rev, "data/rewritten/train.jsonl", repo).splitlines()]
    assert [r["id"] for r in rows] == sft_ids and {r["method"] for r in rows} == {"original"}
    assert all(r["target"] == r["solution"] for r in rows)
    rewrite_metrics = json.loads(read_at(rev, "metrics/rewrite.json", repo))
    assert rewrite_metrics["qa_nll_targets"] == rewrite_metrics["qa_nll_original"]
    assert "engine" not in rewrite_metrics  # nothing generated
