"""Stage `evaluate-base`: the base model's scores, computed once per (model, tasks, settings)
and reused by every `evaluate` run of a sweep. Writes data/eval/base.json (scores and per-item
results) and metrics/eval_base.json."""

from __future__ import annotations

from pathlib import Path

from rlrewrite.jsonl import read_jsonl, write_json
from rlrewrite.stage import finish_stage, open_stage, run_stage

MODEL_DIR = Path("models/base")
TEST_DATA = Path("data/prepared/test.jsonl")
RESULTS = Path("data/eval/base.json")
METRICS = Path("metrics/eval_base.json")


def main() -> None:
    params = open_stage("evaluate-base")
    # the heavy libraries load once params and inputs have passed: a bad value fails in a second
    import mlflow
    from transformers import AutoTokenizer

    from rlrewrite.device import dtype_name, precision_label
    from rlrewrite.evaluation.harness import (
        DOWNSTREAM_TASK,
        downstream_record,
        evaluate_model,
        general_tasks,
    )
    from rlrewrite.evaluation.solution_nll import solution_nll
    from rlrewrite.tracking import stage_run

    cfg = params.evaluate
    tasks = [DOWNSTREAM_TASK] + general_tasks(params.benchmarks, cfg)
    with stage_run("evaluate-base", params.logged()):
        scores = evaluate_model(MODEL_DIR, tasks, cfg, params.data.seed,
                                dtype_name(params.precision),
                                engine=params.engine, vllm_cfg=params.vllm)
        test = read_jsonl(TEST_DATA)
        nll = solution_nll(MODEL_DIR, [r["question"] for r in test], [r["solution"] for r in test])
        scores[DOWNSTREAM_TASK]["record"] = downstream_record(
            scores, test, list(nll), AutoTokenizer.from_pretrained(MODEL_DIR))
        write_json(RESULTS, scores)
        summary = {task: round(s["score"], 4) for task, s in scores.items()}
        record = scores[DOWNSTREAM_TASK]["record"]
        summary.update(downstream_truncated=record["truncated"],
                       downstream_no_answer=record["no_answer"],
                       downstream_gold_nll=round(float(nll.mean()), 4))
        mlflow.log_metrics({f"base/{t}": v for t, v in summary.items()})
        print("evaluate-base:", finish_stage(METRICS, summary, precision_label(params.precision),
                                             params.engine))


if __name__ == "__main__":
    run_stage("evaluate-base", main)
