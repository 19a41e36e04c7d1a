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
