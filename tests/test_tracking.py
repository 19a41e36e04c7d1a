import mlflow

from rlrewrite import tracking


def test_default_store_is_sqlite_in_dvc_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_relative_uris_resolve_against_the_users_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///store/m.db")
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'store/m.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////abs/m.db")
    assert tracking.tracking_uri() == "sqlite:////abs/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://server:5000")
    assert tracking.tracking_uri() == "http://server:5000"


def test_stage_run_tags_and_flat_params(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_EXP_NAME", "exp-abc")
    workdir = tmp_path / "temp-copy"  # as under `dvc exp run --temp`
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    with tracking.stage_run("prepare", {"seed": 1, "data": {"sizes": {"sft": 4}, "config": None}}) as run:
        mlflow.log_metric("m", 1.0)
        mlflow.log_text("hello", "a.txt")
    stored = mlflow.get_run(run.info.run_id)
    assert stored.data.tags["stage"] == "prepare"
    assert stored.data.tags["dvc_experiment"] == "exp-abc"
    assert "git_revision" in stored.data.tags
    assert stored.data.params == {"seed": "1", "data.sizes.sft": "4", "data.config": "null"}
    assert (tmp_path / "mlflow.db").exists() and not (workdir / "mlflow.db").exists()
    assert (tmp_path / "mlartifacts").is_dir() and not (workdir / "mlruns").exists()


def _store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)


def test_a_failing_stage_ends_failed_and_an_interrupted_one_killed(tmp_path, monkeypatch):
    import pytest

    _store(tmp_path, monkeypatch)
    ids = {}
    for name, error in (("boom", ValueError), ("stop", KeyboardInterrupt)):
        with pytest.raises(error):
            with tracking.stage_run(name, {}) as run:
                ids[name] = run.info.run_id
                raise error("x")
    assert mlflow.get_run(ids["boom"]).info.status == "FAILED"
    assert mlflow.get_run(ids["stop"]).info.status == "KILLED"


def test_sigterm_ends_the_run_killed(tmp_path):
    """A real SIGTERM to a real stage process."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "stage.py"
    script.write_text(
        "import time\nfrom rlrewrite import tracking\n"
        "with tracking.stage_run('sleepy', {}) as run:\n"
        "    print(run.info.run_id, flush=True)\n"
        "    time.sleep(60)\n")
    env = {**os.environ, "DVC_ROOT": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    child = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, text=True)
    run_id = child.stdout.readline().strip()
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) != 0
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert mlflow.get_run(run_id).info.status == "KILLED"


def test_a_run_orphaned_by_sigkill_is_closed_when_the_stage_next_starts(tmp_path, monkeypatch):
    import socket

    _store(tmp_path, monkeypatch)
    with tracking.stage_run("sft", {}) as first:
        pass
    client = mlflow.MlflowClient()
    orphan = client.create_run(first.info.experiment_id,
                               tags={"stage": "sft", "host": socket.gethostname(),
                                     "pid": "999999999"}).info.run_id  # no such process
    assert client.get_run(orphan).info.status == "RUNNING"
    with tracking.stage_run("sft", {}):
        pass
    assert client.get_run(orphan).info.status == "KILLED"

    # a killed stage of another experiment: closed by any stage, its parent too
    parent = client.create_run(first.info.experiment_id, tags={"role": "experiment"}).info.run_id
    orphan = client.create_run(first.info.experiment_id,
                               tags={"stage": "rewrite", "host": socket.gethostname(),
                                     "pid": "999999999", "mlflow.parentRunId": parent}).info.run_id
    with tracking.stage_run("evaluate", {}):
        pass
    assert client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(parent).info.status == "KILLED"


DVC_YAML = """stages:
  rewrite:
    cmd: python rewrite.py
    deps: [data/prepared]
    outs: [data/rewritten]
    metrics: [{metrics/rewrite.json: {cache: false}}]
  evaluate:
    cmd: python evaluate.py
    deps: [data/rewritten/train.jsonl]
    metrics: [{metrics/eval.json: {cache: false}}]
  unrelated:
    cmd: python other.py
    deps: [data/other]
    metrics: [{metrics/other.json: {cache: false}}]
"""


def test_stages_of_one_experiment_share_a_parent_with_headline_metrics(tmp_path, monkeypatch):
    import json

    import pytest

    _store(tmp_path, monkeypatch)
    monkeypatch.setenv("DVC_EXP_NAME", "rl-s1")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text("seed: 1\ndata: {seed: 0}\nrewrite: {method: rl}\n")
    (tmp_path / "metrics").mkdir()
    # a stale file of a stage that does not feed `evaluate` must not reach the parent
    (tmp_path / "metrics/other.json").write_text(json.dumps({"mlflow_run_id": "stale"}))

    with tracking.stage_run("rewrite", {"rewrite.method": "rl"}) as run:
        (tmp_path / "metrics/rewrite.json").write_text(json.dumps(
            {"acceptance_rate": 0.5, **tracking.run_reference()}))
        rewrite_id = run.info.run_id
    # `rewrite` restored from DVC's run-cache in another experiment: no run, but its metrics file
    monkeypatch.setenv("DVC_EXP_NAME", "rl-s1-again")
    with tracking.stage_run("evaluate", {}) as run:
        (tmp_path / "metrics/eval.json").write_text(json.dumps(
            {"downstream": {"gain": 0.1}, "forgetting_mean": 0.02}))
        evaluate_id = run.info.run_id

    client = mlflow.MlflowClient()
    parents = {r.info.run_name: r for r in client.search_runs(
        [mlflow.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT).experiment_id],
        "tags.role = 'experiment'")}
    assert set(parents) == {"rl-s1", "rl-s1-again"}
    first, second = parents["rl-s1"], parents["rl-s1-again"]
    assert mlflow.get_run(rewrite_id).data.tags["mlflow.parentRunId"] == first.info.run_id
    assert mlflow.get_run(evaluate_id).data.tags["mlflow.parentRunId"] == second.info.run_id
    assert first.data.tags["method"] == "rl" and first.data.tags["seed"] == "1"
    assert first.data.params == {"seed": "1", "data.seed": "0", "rewrite.method": "rl"}
    assert first.data.metrics == {"rewrite/acceptance_rate": 0.5}
    assert first.data.tags["run.rewrite"] == rewrite_id and first.info.status == "FINISHED"
    assert second.data.metrics == {"rewrite/acceptance_rate": 0.5, "downstream/gain": 0.1,
                                   "forgetting_mean": 0.02}
    assert second.data.tags["run.rewrite"] == rewrite_id  # linked, though it ran elsewhere
    assert "run.unrelated" not in second.data.tags
    experiment = mlflow.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    with pytest.raises(ValueError):
        with tracking.stage_run("evaluate", {}):
            raise ValueError("boom")
    assert mlflow.get_run(second.info.run_id).info.status == "FAILED"


def test_a_check_failing_after_the_work_marks_its_finished_runs_failed(tmp_path, monkeypatch):
    """rlrewrite/stage.py: params.yaml changed under a stage whose MLflow run already ended
    FINISHED; that run and its parent end FAILED, the reason in a `failure` tag."""
    _store(tmp_path, monkeypatch)
    monkeypatch.setattr(tracking, "_FINISHED", [])  # earlier tests' runs live in other stores
    with tracking.stage_run("train", {}) as run:
        run_id = run.info.run_id
    finished = mlflow.get_run(run_id)
    assert finished.info.status == "FINISHED"
    tracking.fail_finished_runs("train: params.yaml changed")
    failed = mlflow.get_run(run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["failure"] == "train: params.yaml changed"
    parent = mlflow.get_run(failed.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FAILED"
