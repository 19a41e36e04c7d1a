"""This machine's dense matmul throughput (GFLOP/s) in bf16 and fp32: the ceiling the stages'
achieved FLOP/s are compared with.

    python perf/matmul_peak.py [--size 2048] [--seconds 3] [--out reports/machine_peak.json]

Square matmuls of `--size` in torch, as many as fit in `--seconds` after a warm-up, on every
thread torch uses. Also reports which CPU features oneDNN can use (AMX, avx512_bf16).
Set ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 to measure an AMX machine as one without AMX.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from rlrewrite.compat import cpu_has_amx_tiles, cpu_has_avx512_bf16
from rlrewrite.device import hardware


def gflops(dtype: torch.dtype, size: int, seconds: float) -> float:
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        done += 1
    return 2 * size**3 * done / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", help="write the result as JSON here too")
    args = parser.parse_args()
    result = {
        "cpu": hardware(),
        "threads": torch.get_num_threads(),
        "amx_tiles": cpu_has_amx_tiles(),
        "avx512_bf16": cpu_has_avx512_bf16(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "size": args.size,
        "bf16_gflops": round(gflops(torch.bfloat16, args.size, args.seconds), 1),
        "fp32_gflops": round(gflops(torch.float32, args.size, args.seconds), 1),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
