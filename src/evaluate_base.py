"""Stage `evaluate-base`: the base model's scores, computed once per (model, tasks, settings)
and reused by every `evaluate` run of a sweep. Writes data/eval/base.json (scores and per-item
results) and metrics/eval_base.json."""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow

from rlrewrite.config import ParamsError, load_params
from rlrewrite.evaluation import DOWNSTREAM_TASK, EvalError, evaluate_model, general_tasks
from rlrewrite.jsonl import write_json
from rlrewrite.precision import use_bf16
from rlrewrite.resources import log_usage, stage_usage
from rlrewrite.tracking import stage_run
from rlrewrite.vllm_engine import EngineError

MODEL_DIR = Path("models/base")
RESULTS = Path("data/eval/base.json")
METRICS = Path("metrics/eval_base.json")


def main() -> None:
    params = load_params("params.yaml")
    cfg = params.evaluate
    tasks = [DOWNSTREAM_TASK] + general_tasks(params.benchmarks, cfg)
    with stage_run("evaluate-base", params.model_dump(include={"seed", "engine", "vllm", "evaluate", "benchmarks"})):
        scores = evaluate_model(MODEL_DIR, tasks, cfg, params.seed,
                                "bfloat16" if use_bf16(cfg.precision) else "float32",
                                engine=params.engine, vllm_cfg=params.vllm)
        write_json(RESULTS, scores)
        summary = {task: round(s["score"], 4) for task, s in scores.items()}
        mlflow.log_metrics({f"base/{t}": v for t, v in summary.items()})
        usage = stage_usage("bf16" if use_bf16(cfg.precision) else "fp32")
        summary.update(usage)
        write_json(METRICS, summary)
        log_usage(usage)
        print("evaluate-base:", summary)


if __name__ == "__main__":
    try:
        main()
    except (ParamsError, EvalError, EngineError) as exc:
        sys.exit(f"evaluate-base: {exc}")
