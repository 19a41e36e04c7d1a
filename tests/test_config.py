import copy
import json
from pathlib import Path

import pytest
import yaml

from rlrewrite.config import RENAMED, Params, ParamsError, load_params, migrate

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path, mutate):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.data.sizes.sft > 0
    assert params.model.name


def test_unknown_key_is_named(tmp_path):
    path = _write(tmp_path, lambda raw: raw["data"].update(sizez=3))
    with pytest.raises(ParamsError, match=r"unknown key 'data.sizez'"):
        load_params(path)


def test_missing_key_is_named(tmp_path):
    path = _write(tmp_path, lambda raw: raw["data"]["sizes"].pop("rl"))
    with pytest.raises(ParamsError, match=r"missing key 'data.sizes.rl'"):
        load_params(path)


def test_wrong_type_is_named(tmp_path):
    path = _write(tmp_path, lambda raw: raw["data"]["sizes"].update(sft="many"))
    with pytest.raises(ParamsError, match=r"key 'data.sizes.sft'.*'many'"):
        load_params(path)


def test_string_is_not_coerced_to_bool(tmp_path):
    path = _write(tmp_path, lambda raw: raw["data"].update(rl_shares_sft="yes"))
    with pytest.raises(ParamsError, match=r"data.rl_shares_sft"):
        load_params(path)


def test_unknown_source_is_rejected(tmp_path):
    path = _write(tmp_path, lambda raw: raw["data"].update(source="csv"))
    with pytest.raises(ParamsError, match=r"data.source"):
        load_params(path)


def test_nonpositive_size_is_rejected(tmp_path):
    path = _write(tmp_path, lambda raw: raw["data"]["sizes"].update(test=0))
    with pytest.raises(ParamsError, match=r"data.sizes"):
        load_params(path)


def test_unknown_top_level_section(tmp_path):
    path = _write(tmp_path, lambda raw: raw.update(trainer={"lr": 1}))
    with pytest.raises(ParamsError, match=r"unknown key 'trainer'"):
        load_params(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_negative_reserved_cores_is_rejected(tmp_path):
    path = _write(tmp_path, lambda raw: raw["vllm"].update(cpu_reserved_cores=-1))
    with pytest.raises(ParamsError, match=r"vllm"):
        load_params(path)


@pytest.mark.parametrize("written", ["3e-06", "3e-6", "3.0e-6", "1E-4", "5e+2"])
def test_exponent_floats_as_dvc_writes_them_are_floats(tmp_path, written):
    """`dvc exp run -S rewriter.learning_rate=3e-6` writes `3e-06`, a string under YAML 1.1."""
    text = (REPO / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("  learning_rate: 5.0e-4\n  warmup_steps",
                                 f"  learning_rate: {written}\n  warmup_steps", 1))
    assert load_params(path).rewriter.learning_rate == float(written)


def test_reasoning_rule_thresholds_are_shares(tmp_path):
    path = _write(tmp_path, lambda raw: raw["gate"]["reasoning"].update(min_step_share=1.5))
    with pytest.raises(ParamsError, match=r"key 'gate.reasoning.min_step_share': must be in \[0, 1\]"):
        load_params(path)


@pytest.mark.parametrize("value, ok", [(16, True), ("auto", True), (0, False), ("fast", False),
                                       ("16", False)])
def test_evaluate_batch_size_is_a_positive_int_or_auto(tmp_path, value, ok):
    path = _write(tmp_path, lambda raw: raw["evaluate"].update(batch_size=value))
    if ok:
        assert load_params(path).evaluate.batch_size == value
    else:
        with pytest.raises(ParamsError, match=r"evaluate"):
            load_params(path)


def test_auto_evaluation_batches_need_the_vllm_engine(tmp_path):
    path = _write(tmp_path, lambda raw: (raw.update(engine="hf"),
                                         raw["evaluate"].update(batch_size="auto")))
    with pytest.raises(ParamsError, match=r"evaluate.batch_size: auto needs engine: vllm"):
        load_params(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda raw: raw["rewriter"].update(lambda_dist=float("nan")), r"rewriter.lambda_dist.*finite"),
    (lambda raw: raw["sft"].update(learning_rate=float("inf")), r"sft.learning_rate.*finite"),
    (lambda raw: raw.update(seed=-1), r"key 'seed': must be at least 0"),
    (lambda raw: raw["sft"].update(seed=-2), r"key 'sft.seed': must be at least 0"),
    (lambda raw: raw["sft"].update(warmup_ratio=5.0), r"'sft.warmup_ratio': must be in \[0, 1\)"),
    (lambda raw: raw["sft"].update(warmup_ratio=-1.0), r"'sft.warmup_ratio': must be in \[0, 1\)"),
    (lambda raw: raw["sft"]["lora"].update(target_modules=[]),
     r"key 'sft.lora.target_modules': must be non-empty"),
    (lambda raw: (raw["evaluate"].update(quiz_variants=[]), raw["benchmarks"].update(standard={})),
     r"no general task to measure forgetting on"),
    (lambda raw: raw["rewrite"].update(method="select", temperature=0.0),
     r"method select .* needs temperature > 0"),
    (lambda raw: raw["rewrite"]["select"].update(rule="lowest"), r"rewrite.select.rule"),
])
def test_values_that_would_fail_late_or_silently_are_refused(tmp_path, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(ParamsError, match=message):
        load_params(path)


def _get(raw: dict, dotted: str):
    for part in dotted.split("."):
        raw = raw[part]
    return raw


def _old_style(raw: dict) -> dict:
    """params.yaml as it was before the renames: every old name set, no new one."""
    old = copy.deepcopy(raw)
    for old_key, new_key in RENAMED.items():
        *parents, leaf = old_key.split(".")
        _get(old, ".".join(parents))[leaf] = copy.deepcopy(_get(raw, new_key))
    for new_key in set(RENAMED.values()) - {"rewrite.max_new_tokens"}:  # an old name too
        *parents, leaf = new_key.split(".")
        (_get(old, ".".join(parents)) if parents else old).pop(leaf)
    old.pop("gate")
    return old


@pytest.mark.parametrize("old, new", list(RENAMED.items()))
def test_an_old_name_is_refused_naming_the_new_one(tmp_path, old, new):
    *parents, leaf = old.split(".")
    path = _write(tmp_path, lambda raw: _get(raw, ".".join(parents)).update(
        {leaf: copy.deepcopy(_get(raw, new))}))
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert str(caught.value) == f"{path}: key '{old}' was renamed to '{new}'"


def test_migrate_moves_every_old_name_to_its_new_one():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    old = _old_style(raw)
    raw["gate"].pop("reject_instruction_echo")  # added after the renames: no old name
    migrated = migrate(old)
    assert migrated["gate"].pop("reject_instruction_echo") is False  # what runs before it did
    assert migrated == raw
    migrated["gate"]["reject_instruction_echo"] = True
    assert Params.model_validate(migrated)
    assert "gate" not in old  # not changed in place


def test_migrate_skips_what_is_absent_and_keeps_a_new_name_already_set():
    assert migrate({}) == {} and migrate({"sft": 3, "seed": 1}) == {"sft": 3, "seed": 1}
    assert migrate({"gate": {"reject_instruction_echo": True}}) == \
        {"gate": {"reject_instruction_echo": True}}
    assert migrate({"rewriter": {"max_completion_length": 224}, "rewrite": {"max_new_tokens": 160}}
                   ) == {"rewriter": {}, "rewrite": {"max_new_tokens": 160}}
    assert migrate({"sft": {"precision": "bf16"}, "evaluate": {"precision": "fp32"}}) == \
        {"sft": {}, "evaluate": {}, "precision": "bf16"}


def test_migrate_reads_a_run_record_written_before_the_renames():
    params = json.loads((REPO / "reports/runs/original-s0.json").read_text())["params"]
    assert "judge" in params["rewriter"]
    moved = migrate(params)
    assert not [old for old in RENAMED if _has(moved, old)]
    assert moved["precision"] == params["sft"]["precision"]
    assert moved["gate"]["judge"] == params["rewriter"]["judge"]
    assert moved["sft"]["per_device_train_batch_size"] == params["sft"]["batch_size"]


def _has(raw: dict, dotted: str) -> bool:
    try:
        _get(raw, dotted)
    except (KeyError, TypeError):
        return False
    return True
