"""Stage `evaluate`: the fine-tuned model against the cached base scores.

Writes metrics/eval.json (downstream gain, truncation, no-answer and gold-solution NLL;
forgetting per task, per benchmark family and item-weighted over all, in accuracy and in the
gold option's log-probability, each with a paired bootstrap interval over items; per-item flips),
metrics/eval_point.json (one gain-versus-forgetting point for `dvc plots diff`) and
data/eval/items.json (per-item base and tuned scores, which rlrewrite/report/comparison.py pairs across
experiments).
"""

from __future__ import annotations

import json
from pathlib import Path

from rlrewrite.integrity import check_weights
from rlrewrite.jsonl import read_jsonl, write_json
from rlrewrite.stage import finish_stage, open_stage, run_stage

BASE_DIR = Path("models/base")
SFT_DIR = Path("models/sft")
BASE_RESULTS = Path("data/eval/base.json")
TRAIN_DATA = Path("data/rewritten/train.jsonl")
TEST_DATA = Path("data/prepared/test.jsonl")
METRICS = Path("metrics/eval.json")
POINT = Path("metrics/eval_point.json")
ITEMS = Path("data/eval/items.json")


def main() -> None:
    params = open_stage("evaluate")
    # the heavy libraries load once params and inputs have passed: a bad value fails in a second
    import mlflow
    from transformers import AutoTokenizer

    from rlrewrite.device import dtype_name, precision_label
    from rlrewrite.evaluation.harness import (
        DOWNSTREAM_TASK,
        EvalError,
        compare,
        downstream_record,
        evaluate_model,
        general_tasks,
        paired_items,
    )
    from rlrewrite.evaluation.solution_nll import solution_nll
    from rlrewrite.tracking import stage_run

    cfg = params.evaluate
    general = general_tasks(params.benchmarks, cfg)
    tasks = [DOWNSTREAM_TASK] + general
    base = json.loads(BASE_RESULTS.read_text())
    missing = [t for t in tasks if t not in base]
    if missing:
        raise EvalError(f"{BASE_RESULTS} lacks {missing}: rerun `dvc repro evaluate-base`")
    method = read_jsonl(TRAIN_DATA)[0].get("method", "unknown")
    is_adapter = (SFT_DIR / "adapter_config.json").is_file()
    check_weights(SFT_DIR)  # a truncated or NaN-holding model is named, never scored

    with stage_run("evaluate", params.logged()):
        mlflow.set_tags({"method": method, "seed": params.seed})
        tuned = evaluate_model(BASE_DIR if is_adapter else SFT_DIR, tasks, cfg, params.data.seed,
                               dtype_name(params.precision),
                               adapter_dir=SFT_DIR if is_adapter else None,
                               engine=params.engine, vllm_cfg=params.vllm)
        test = read_jsonl(TEST_DATA)
        nll = solution_nll(BASE_DIR if is_adapter else SFT_DIR, [r["question"] for r in test],
                           [r["solution"] for r in test],
                           adapter_dir=SFT_DIR if is_adapter else None)
        tuned[DOWNSTREAM_TASK]["record"] = downstream_record(
            tuned, test, list(nll), AutoTokenizer.from_pretrained(BASE_DIR))
        result = compare(base, tuned, general, seed=params.data.seed)
        write_json(ITEMS, paired_items(base, tuned, tasks))
        finish_stage(METRICS, result, precision_label(params.precision), params.engine)
        write_json(POINT, [{"method": method, "gain": result["downstream"]["gain"],
                            "forgetting_mean": result["forgetting_mean"]}])
        flat = {f"downstream/{k}": v for k, v in result["downstream"].items()}
        flat["forgetting_mean"] = result["forgetting_mean"]
        if "forgetting_logp_mean" in result:
            flat["forgetting_logp_mean"] = result["forgetting_logp_mean"]
        for name, values in result["families"].items():
            flat[f"forgetting_family/{name}"] = values["forgetting"]
            if "forgetting_logp" in values:
                flat[f"forgetting_logp_family/{name}"] = values["forgetting_logp"]
        for task, values in result["general"].items():
            flat[f"forgetting/{task}"] = values["forgetting"]
            flat[f"tuned/{task}"] = values["tuned"]
            if "forgetting_logp" in values:
                flat[f"forgetting_logp/{task}"] = values["forgetting_logp"]
        for task, counts in result["flips"].items():
            flat[f"flips_lost/{task}"] = counts["lost"]
            flat[f"flips_gained/{task}"] = counts["gained"]
        mlflow.log_metrics(flat)
        mlflow.log_dict({t: {"base": base[t]["samples"], "tuned": tuned[t]["samples"]} for t in tasks},
                        "eval_samples.json")
        print("evaluate:", json.dumps(result))


if __name__ == "__main__":
    run_stage("evaluate", main)
