"""The stage runner's failure path: one line, and the committed metrics DVC deleted put back."""

import os
import subprocess
import sys

STAGE = """
from rlrewrite.config import ParamsError
from rlrewrite.stage import run_stage

def main():
    raise ParamsError("params.yaml: key 'sft.epochs': must be greater than 0 (got 0.0)")

run_stage("sft", main)
"""


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_a_failed_stage_restores_its_committed_metrics_and_names_dvc_checkout(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  sft:\n    cmd: python stage.py\n    outs:\n      - models/sft\n"
        "    metrics:\n      - metrics/sft.json:\n          cache: false\n")
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  sft:\n    cmd: python stage.py\n    outs:\n"
        "    - path: metrics/sft.json\n      hash: md5\n    - path: models/sft\n      hash: md5\n")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/sft.json").write_text('{"train_loss_final": 0.07}\n')
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "run")
    (tmp_path / "metrics/sft.json").unlink()  # what DVC does before running the stage
    (tmp_path / "stage.py").write_text(STAGE)
    done = subprocess.run([sys.executable, "stage.py"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "sft: params.yaml: key 'sft.epochs': must be greater than 0 (got 0.0); "
        "`dvc checkout sft` restores its previous outputs (models/sft)"]
    assert (tmp_path / "metrics/sft.json").read_text() == '{"train_loss_final": 0.07}\n'


def test_a_stage_that_never_ran_gets_no_restore_hint(tmp_path):
    (tmp_path / "stage.py").write_text(STAGE)
    done = subprocess.run([sys.executable, "stage.py"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.stderr.strip() == ("sft: params.yaml: key 'sft.epochs': must be greater than 0 "
                                   "(got 0.0)")


def test_validate_names_an_uncommitted_params_change_it_refuses(tmp_path):
    """`dvc exp run -S seed=-1` leaves the bad value in params.yaml; validate says how to undo it."""
    import yaml
    from conftest import REPO

    git(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "params")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["seed"] = -1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, str(REPO / "src/validate.py")], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "key 'seed'" in done.stderr and "`git checkout params.yaml`" in done.stderr


TOY_STAGE = """
from pathlib import Path

import yaml
from rlrewrite.config import ParamsError
from rlrewrite.stage import run_stage

def main():
    n = yaml.safe_load(open("params.yaml"))["n"]
    if n < 0:
        raise ParamsError(f"params.yaml: key 'n': must be >= 0 (got {n})")
    Path("out").mkdir(exist_ok=True)
    Path("out/data.txt").write_text(f"n={n}")
    Path("model.bin").write_bytes(bytes(range(256)) * n)

run_stage("make", main)
"""


def test_repro_single_stage_with_a_bad_param_keeps_the_stage_outputs(tmp_path):
    """`dvc repro -s` skips `validate`, and DVC deletes a stage's outputs before its command
    runs: the failing stage puts them back from DVC's cache while that `dvc` still holds it."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    dvc = [sys.executable, "-m", "dvc"]
    git(tmp_path, "init", "-q")
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "stage.py").write_text(TOY_STAGE)
    (tmp_path / "params.yaml").write_text("n: 3\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python stage.py\n    deps: [stage.py]\n    params: [n]\n"
        "    outs: [out, model.bin]\n")
    subprocess.run([*dvc, "repro", "-q"], cwd=tmp_path, check=True, env=env)
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "run")
    before = {p: (tmp_path / p).read_bytes() for p in ("out/data.txt", "model.bin")}

    (tmp_path / "params.yaml").write_text("n: -1\n")
    done = subprocess.run([*dvc, "repro", "-s", "make"], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert done.returncode != 0 and "Traceback" not in done.stdout + done.stderr
    assert ("make: params.yaml: key 'n': must be >= 0 (got -1) (its previous outputs are back: "
            "model.bin, out)") in done.stdout + done.stderr
    assert {p: (tmp_path / p).read_bytes() for p in before} == before
    git(tmp_path, "checkout", "params.yaml")
    status = subprocess.run([*dvc, "status"], cwd=tmp_path, capture_output=True, text=True,
                            env=env)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
