"""Stage `prepare`: base model to models/base, downstream splits to data/prepared,
general-knowledge quiz tasks and samples of the standard benchmarks to data/benchmarks, sizes to
metrics/prepare.json."""

from __future__ import annotations

import shutil
from pathlib import Path

from rlrewrite.config import ParamsError
from rlrewrite.data.base_model import materialise_base_model
from rlrewrite.data.quiz import build_items, load_task_definitions, read_pairs
from rlrewrite.data.sources import open_source
from rlrewrite.data.splits import draw_splits
from rlrewrite.evaluation.quiz_tasks import write_quiz_tasks
from rlrewrite.evaluation.standard_tasks import STANDARD_DIR, check_names, write_samples
from rlrewrite.jsonl import write_jsonl
from rlrewrite.stage import finish_stage, open_stage, run_stage

MODEL_DIR = Path("models/base")
PREPARED_DIR = Path("data/prepared")
BENCH_DIR = Path("data/benchmarks")
QUIZ_DIR = Path("data/bsd-quiz")
METRICS = Path("metrics/prepare.json")
N_CHOICES = 4


def mean_tokens(tokenizer, texts: list[str]) -> float:
    return sum(len(ids) for ids in tokenizer(texts)["input_ids"]) / max(len(texts), 1)


def main() -> None:
    params = open_stage("prepare")
    check_names(list(params.benchmarks.standard))  # before the slow model conversion
    # the heavy libraries load once params and inputs have passed: a bad value fails in a second
    import mlflow
    from transformers import AutoTokenizer

    from rlrewrite.tracking import stage_run

    with stage_run("prepare", params.logged()):
        model_info = materialise_base_model(params.model.name, MODEL_DIR)
        tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)

        data = params.data
        train_stream = open_source(data, data.seed)
        test_stream = (open_source(data, data.seed, split=data.test_split)
                       if data.test_split else None)
        splits = draw_splits(train_stream, test_stream, data.sizes, data.rl_shares_sft,
                             data.test_templates)
        metrics = {"collisions_dropped": splits.collisions_dropped,
                   "template_collisions_dropped": splits.template_collisions_dropped,
                   "rl_duplicates_dropped": splits.rl_duplicates_dropped,
                   "test_templates": len(splits.test_templates),
                   "skipped_no_answer": train_stream.skipped + (test_stream.skipped if test_stream else 0),
                   "model_parameters": model_info["parameters"]}
        for split in ("sft", "rl", "test"):
            records = getattr(splits, split)
            write_jsonl(PREPARED_DIR / f"{split}.jsonl", records)
            metrics[f"{split}_size"] = len(records)
            metrics[f"{split}_solution_tokens_mean"] = round(
                mean_tokens(tokenizer, [r["solution"] for r in records]), 2)

        # written to a scratch folder and moved into place: a failure leaves no half-written set
        scratch = BENCH_DIR.with_name(BENCH_DIR.name + ".partial")
        shutil.rmtree(scratch, ignore_errors=True)
        (scratch / "tasks").mkdir(parents=True)
        definitions = load_task_definitions(QUIZ_DIR / "tasks.yaml")
        bench = params.benchmarks
        for name in bench.quiz_tasks:
            if name not in definitions:
                raise ParamsError(f"params.yaml: benchmarks.quiz_tasks: unknown task '{name}'; "
                                  f"defined in {QUIZ_DIR / 'tasks.yaml'}: {sorted(definitions)}")
            items = build_items(definitions[name], read_pairs(QUIZ_DIR, definitions[name]),
                                N_CHOICES, bench.quiz_max_items, data.seed)
            data_file = BENCH_DIR / f"quiz_{name}.jsonl"  # where the task YAML finds it
            write_jsonl(scratch / data_file.name, items)
            write_quiz_tasks(scratch / "tasks", data_file.as_posix(), name, N_CHOICES)
            metrics[f"quiz_{name}_items"] = len(items)

        for name, count in write_samples(bench.standard, data.seed,
                                         scratch / STANDARD_DIR.relative_to(BENCH_DIR)).items():
            metrics[f"std_{name}_items"] = count
        shutil.rmtree(BENCH_DIR, ignore_errors=True)
        scratch.rename(BENCH_DIR)

        mlflow.log_metrics(metrics)
        print("prepare:", finish_stage(METRICS, metrics))


if __name__ == "__main__":
    run_stage("prepare", main)
