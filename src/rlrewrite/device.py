"""The one place that decides the device and the weights' precision."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from rlrewrite.compat import cpu_has_amx_tiles, cpu_has_avx512_bf16


def on_gpu() -> bool:
    return torch.cuda.is_available()


def device_name() -> str:
    return "cuda" if on_gpu() else "cpu"


def hardware() -> str:
    """What the numbers ran on, for metrics files and run records: the GPU's name, or the CPU
    model with the bf16 instructions it offers (they decide `precision: auto` and its speed)."""
    if on_gpu():
        return torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), model)
    isa = "AMX" if cpu_has_amx_tiles() else "AVX512-BF16" if cpu_has_avx512_bf16() else "no bf16"
    return f"{model} ({isa})"


def process_device() -> str:
    """This process's device: under a multi-process launch each GPU process has its own
    (torchrun's LOCAL_RANK)."""
    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if on_gpu() else "cpu"


def use_bf16(precision: str) -> bool:
    """auto: bf16 on CUDA and on CPUs with bf16 instructions (AMX tiles or AVX512-BF16), fp32
    elsewhere. Measured with SmolLM2-135M (docs/results.md): bf16 weights make forward passes
    3.1-3.5x and generation 2.1x faster than fp32 both on an Intel Xeon with AMX and on an AMD
    EPYC with AVX512-BF16 only. The LoRA adapter itself stays fp32 (peft's default)."""
    if precision == "auto":
        return on_gpu() or cpu_has_amx_tiles() or cpu_has_avx512_bf16()
    return precision == "bf16"


def weights_dtype(precision: str) -> torch.dtype:
    return torch.bfloat16 if use_bf16(precision) else torch.float32


def dtype_name(precision: str) -> str:
    """`bfloat16` or `float32`, as transformers, lm-eval and vLLM spell it."""
    return "bfloat16" if use_bf16(precision) else "float32"


def precision_label(precision: str) -> str:
    """`bf16` or `fp32`, as the stage metrics report it."""
    return "bf16" if use_bf16(precision) else "fp32"
