"""What a stage used, for its metrics file: wall time, peak memory, device, hardware and
precision.

`dvc metrics show` / `dvc exp show` then are the timing table, and a bf16 run is never mistaken
for an fp32 one (their results differ).
"""

from __future__ import annotations

import resource
import time

import psutil

from rlrewrite.device import device_name, hardware


def stage_usage(precision: str | None = None, engine: str | None = None) -> dict:
    """`time_s` since the process started (imports included: that is what a stage costs),
    `peak_rss_gib` of this process or its largest finished child (vLLM's engine core),
    `device`, `hardware` (the GPU, or the CPU model and its bf16 instructions), `precision`
    ("bf16" or "fp32") where the stage runs a model, and `engine` ("hf" or "vllm") where it
    generates."""
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    usage = {"time_s": round(time.time() - psutil.Process().create_time(), 1),
             "peak_rss_gib": round(peak_kib / 2**20, 2),
             "device": device_name(), "hardware": hardware()}
    if precision is not None:
        usage["precision"] = precision
    if engine is not None:
        usage["engine"] = engine
    return usage


def log_usage(usage: dict) -> None:
    """Numbers as MLflow metrics, device and precision as tags (of the active run), and one log
    line, so a reader of the stage's output sees what it ran on."""
    import mlflow

    mlflow.log_metrics({f"stage/{k}": v for k, v in usage.items() if isinstance(v, (int, float))})
    mlflow.set_tags({k: v for k, v in usage.items() if isinstance(v, str)})
    run = mlflow.active_run()
    stage = run.info.run_name if run is not None else "stage"
    print(f"{stage}: {usage['time_s']:.0f} s, peak RSS {usage['peak_rss_gib']:.2f} GiB, "
          + ", ".join(usage[k] for k in ("device", "precision", "engine") if k in usage))
