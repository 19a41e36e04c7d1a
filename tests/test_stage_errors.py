"""Every stage script ends an expected failure with one line naming the stage and the cause, and
no traceback (rlrewrite/stage.py): a bad param, a missing input, vLLM absent."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, copy_repo

from rlrewrite.dag import stage_graph
from rlrewrite.stage_params import declared_params

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


def run_stages(repo, stages, env=None) -> dict[str, tuple[int, str]]:
    """One after another: a DVC workspace runs one stage at a time (rlrewrite/workspace_lock.py)."""
    done = {stage: subprocess.run([sys.executable, STAGES[stage]], cwd=repo, env=env,
                                  capture_output=True, text=True, timeout=300)
            for stage in stages}
    return {stage: (run.returncode, run.stderr) for stage, run in done.items()}


def without_vllm(tmp_path) -> dict:
    """An environment in which `import vllm` fails, as where it is not installed."""
    hide = tmp_path / "no-vllm"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text('import sys\nsys.modules["vllm"] = None\n')
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(hide), os.environ.get("PYTHONPATH")) if p)}


@pytest.mark.slow
def test_each_stage_names_its_missing_input_and_the_stage_that_writes_it(tmp_path):
    """With `engine: hf` and vLLM absent: no stage asks for vLLM, each names what is missing."""
    repo = copy_repo(tmp_path / "repo")  # sources only: no stage has run
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["engine"] = "hf"
    params["evaluate"]["batch_size"] = 8  # `auto` needs vllm
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    graph = stage_graph(repo / "dvc.yaml")
    stages = [s for s in STAGES if s != "validate"]
    for stage, (code, err) in run_stages(repo, stages, without_vllm(tmp_path)).items():
        assert code == 1 and "Traceback" not in err, (stage, err)
        last = err.strip().splitlines()[-1]
        found = re.fullmatch(rf"{stage}: (\S+) is missing: stage '(\S+)' writes it "
                             rf"\(`dvc repro \2`\)", last)
        assert found, (stage, last)
        missing, writer = found.groups()
        assert missing in graph[stage]["deps"] and missing in graph[writer]["outs"], last


@pytest.mark.slow
def test_each_engine_stage_without_vllm_says_how_to_get_it_in_one_line(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    env = without_vllm(tmp_path)
    engine_stages = [s for s in STAGES if "engine" in declared_params(
        s, repo / "dvc.yaml")]
    assert len(engine_stages) == 6  # validate, the rewriter, candidates, rewrite, both evaluations
    for stage, (code, err) in run_stages(repo, engine_stages, env).items():
        assert code == 1 and "Traceback" not in err, (stage, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"{stage}: engine: vllm needs vLLM: `make setup-vllm`"), last
