"""Every stage script ends an expected failure with one line naming the stage and the cause, and
no traceback (rlrewrite/stage.py): here, a bad param each stage would otherwise read."""

import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

STAGES = {"validate": "src/validate.py", "prepare": "src/prepare.py",
          "rollout-and-train-rewriter": "src/train_rewriter.py",
          "rewrite-candidates": "src/candidates.py", "rewrite": "src/rewrite.py",
          "sft": "src/sft.py", "evaluate-base": "src/evaluate_base.py",
          "evaluate": "src/evaluate.py"}


@pytest.fixture(scope="module")
def bad_params_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("bad-params")
    shutil.copy(REPO / "dvc.yaml", repo / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["sft"]["warmup_ratio"] = 5.0  # read by validate and sft; every stage validates all
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    return repo


@pytest.mark.slow
def test_each_stage_names_a_bad_param_in_one_line(bad_params_repo):
    running = {stage: subprocess.Popen([sys.executable, str(REPO / script)], cwd=bad_params_repo,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for stage, script in STAGES.items()}
    for stage, proc in running.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, (stage, err)
        assert "Traceback" not in err, (stage, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"{stage}: params.yaml: key 'sft.warmup_ratio'"), (stage, last)
        assert "must be in [0, 1)" in last and len(last) < 300, (stage, last)
