"""A stage reads only the params its dvc.yaml entry lists, and logs exactly those."""

from pathlib import Path

import pytest
import yaml

from rlrewrite.config import ParamsError
from rlrewrite.stage_params import declared_params, load_stage_params

REPO = Path(__file__).resolve().parents[1]
STAGES = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


def stage(name: str):
    return load_stage_params(name, REPO / "params.yaml", REPO / "dvc.yaml")


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_logs_exactly_its_declared_keys(name):
    declared = declared_params(name, REPO / "dvc.yaml")
    logged = stage(name).logged()
    assert logged, name
    for key in logged:
        assert any(key == d or key.startswith(f"{d}.") for d in declared), key
    for key in declared:
        assert any(k == key or k.startswith(f"{key}.") for k in logged), key


def test_a_read_outside_the_declared_keys_names_the_stage_key_and_dvc_yaml():
    with pytest.raises(ParamsError, match=r"stage 'sft' reads params key 'rewriter'.*dvc\.yaml"):
        stage("sft").rewriter
    rewrite = stage("rewrite")
    assert rewrite.gate.reasoning.min_step_share == 0.5  # a declared section, all of it
    with pytest.raises(ParamsError, match="'rewriter.lora'"):
        rewrite.rewriter.lora
    with pytest.raises(AttributeError):
        rewrite.seed = 3


def test_the_rewriter_does_not_depend_on_how_the_rewrite_stage_serves_it():
    """Toggling vllm.rewriter_lora (read by `rewrite` only) must not retrain the rewriter."""
    with pytest.raises(ParamsError, match="'vllm.rewriter_lora'"):
        stage("rollout-and-train-rewriter").vllm.rewriter_lora
    assert stage("rewrite").vllm.rewriter_lora in ("merged", "served")


def test_the_rewrite_stage_logs_the_gate_settings_it_runs():
    logged = stage("rewrite").logged()
    assert "gate.judge" in logged and "gate.reasoning.min_step_share" in logged
    assert "rewriter.lora.rank" not in logged and "rewriter.learning_rate" not in logged


def test_dvc_yaml_naming_an_undefined_key_is_an_error(tmp_path):
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text(yaml.safe_dump({"stages": {"sft": {"cmd": "x", "params": ["sft.nope"]}}}))
    with pytest.raises(ParamsError, match=r"dvc.yaml: stage 'sft' lists params key 'sft.nope'"):
        load_stage_params("sft", REPO / "params.yaml", dvc_yaml)
    with pytest.raises(ParamsError, match="no stage 'other'"):
        load_stage_params("other", REPO / "params.yaml", dvc_yaml)
