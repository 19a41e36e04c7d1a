"""Benchmark: `evaluate.batch_size` — how many requests lm-eval hands its backend at once.

Scores π0 (models/base) on the evaluation's tasks once per batch size, with the engine and
precision of params.yaml, and prints the wall time per batch size and how many per-item scores
agree with the first batch size's (bf16 numerics can depend on the batch's shape). With the vllm
backend, `auto` gives vLLM every request of a task at once, so its scheduler fills its batches
itself instead of waiting for lm-eval's chunks of `batch_size`.

Needs `dvc repro prepare` first (models/base, data/benchmarks). Run it on a quiet machine:
    python perf/eval_batch.py --batch-sizes 16 auto --tasks downstream standard \
        --out reports/eval_batch.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rlrewrite.config import load_params
from rlrewrite.device import dtype_name, hardware
from rlrewrite.evaluation.harness import DOWNSTREAM_TASK, evaluate_model, family, general_tasks

BASE = Path("models/base")


def batch_size(text: str) -> int | str:
    return text if text == "auto" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", type=batch_size, nargs="+", default=[16, "auto"])
    parser.add_argument("--tasks", nargs="+", choices=["downstream", "standard", "quiz", "lm_eval"],
                        default=["downstream", "standard"],
                        help="which of the evaluation's task families to score")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    params = load_params("params.yaml")
    general = general_tasks(params.benchmarks, params.evaluate)
    tasks = ([DOWNSTREAM_TASK] if "downstream" in args.tasks else []) + [
        t for t in general if family(t) in args.tasks]
    dtype = dtype_name(params.precision)

    rows, first = [], None
    for size in args.batch_sizes:
        cfg = params.evaluate.model_copy(update={"batch_size": size})
        started = time.perf_counter()
        scores = evaluate_model(BASE, tasks, cfg, params.data.seed, dtype, engine=params.engine,
                                vllm_cfg=params.vllm)
        wall = time.perf_counter() - started
        items = {(t, i): v for t, s in scores.items() for i, v in s["items"].items()}
        first = first or items
        same = sum(items.get(key) == value for key, value in first.items())
        row = {"batch_size": size, "wall_s": round(wall, 1), "items": len(items),
               "agree_with_first": round(same / len(first), 4),
               "scores": {t: round(s["score"], 4) for t, s in scores.items()}}
        print(json.dumps(row), flush=True)
        rows.append(row)

    if args.out:
        args.out.write_text(json.dumps({"engine": params.engine, "dtype": dtype,
                                        "hardware": hardware(), "tasks": tasks, "runs": rows},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
