"""Stage `sft`: fine-tune π0 on data/rewritten/train.jsonl (whatever method produced it).

Writes models/sft/ (a full model, or a LoRA adapter with `sft.mode: lora`),
metrics/sft.json and the loss per optimiser step, metrics/sft_steps.tsv. An interrupted run resumes from checkpoints/sft/ when rerun with the same inputs.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

from rlrewrite.jsonl import DataError, read_jsonl
from rlrewrite.model_card import write_card
from rlrewrite.ranks import die_with_launcher, is_main_process
from rlrewrite.stage import finish_stage, open_stage, run_stage
from rlrewrite.train.checkpoints import fingerprint, launch_key, prepare_checkpoint_dir

MODEL_DIR = Path("models/base")
TRAIN_DATA = Path("data/rewritten/train.jsonl")
OUTPUT_DIR = Path("models/sft")
CHECKPOINTS = Path("checkpoints/sft")
METRICS = Path("metrics/sft.json")
LOSS_TSV = Path("metrics/sft_steps.tsv")


def completion_tokens(dataset) -> int:
    """Tokens the loss covers in one epoch: the labelled (completion) tokens TRL kept after
    truncation."""
    return int(sum(sum(1 for t in labels if t != -100) for labels in dataset["labels"]))


def write_loss_curve(log_history: list[dict]) -> None:
    with LOSS_TSV.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["step", "loss", "learning_rate"])
        writer.writerows([e["step"], round(e["loss"], 4), e.get("learning_rate")]
                         for e in log_history if "loss" in e)


def main() -> None:
    die_with_launcher()
    params = open_stage("sft")
    # the heavy libraries load once params and inputs have passed: a bad value fails in a second
    import mlflow

    from rlrewrite.device import precision_label
    from rlrewrite.tracking import stage_run
    from rlrewrite.train.sft import build_sft_trainer, sft_dataset

    cfg = params.sft
    records = read_jsonl(TRAIN_DATA)
    try:
        dataset = sft_dataset(records, str(TRAIN_DATA))
    except ValueError as exc:
        raise DataError(str(exc)) from None
    methods = sorted({r.get("method", "unknown") for r in records})
    seed = cfg.effective_seed(params.seed)
    key = fingerprint(seed, params.precision, cfg.model_dump(), records, (MODEL_DIR / "config.json").read_text(),
                      launch_key(params.launch.processes, params.launch.config_file))
    main_process = is_main_process()
    resume = prepare_checkpoint_dir(CHECKPOINTS, key, owner=main_process)

    with stage_run("sft", params.logged()):
        if main_process:
            mlflow.set_tags({"method": ",".join(methods), "seed": params.seed, "sft_seed": seed,
                             "sft_mode": cfg.mode})
        trainer = build_sft_trainer(cfg, seed, MODEL_DIR, dataset, CHECKPOINTS, ["mlflow"],
                                    precision=params.precision)
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume)
        wall = time.perf_counter() - started
        if main_process:
            shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
        trainer.accelerator.wait_for_everyone()
        trainer.save_model(str(OUTPUT_DIR))  # on every process: a sharded model is gathered
        if not main_process:  # under several processes, the main one writes and logs
            return
        trainer.processing_class.save_pretrained(OUTPUT_DIR)
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        metrics = {
            "train_loss_first": round(losses[0], 4),
            "train_loss_final": round(losses[-1], 4),
            "train_loss_mean": round(result.training_loss, 4),
            "tokens_seen": int(trainer.state.num_input_tokens_seen or 0),
            "tokens_trained": round(completion_tokens(trainer.train_dataset) * cfg.epochs),
            "steps": trainer.state.global_step,
            "examples": len(dataset),
            "processes": trainer.accelerator.num_processes,
            "train_seconds": round(wall, 1),
        }
        mlflow.log_metrics({f"summary/{k}": v for k, v in metrics.items()})
        metrics = finish_stage(METRICS, metrics, precision_label(params.precision))
        write_loss_curve(trainer.state.log_history)
        write_card(OUTPUT_DIR, title="π0 after SFT on rewritten targets",
                   summary=f"SFT ({cfg.mode}, loss {cfg.loss}) on {len(dataset)} targets of "
                           f"method {', '.join(methods)} (data/rewritten/train.jsonl).",
                   base_model=params.model.name, data=f"{TRAIN_DATA} ({', '.join(methods)})",
                   params={"seed": params.seed, "precision": params.precision,
                           "sft": cfg.model_dump()}, metrics=metrics,
                   tags=["sft", *methods])
        print("sft:", metrics)
    shutil.rmtree(CHECKPOINTS, ignore_errors=True)


if __name__ == "__main__":
    run_stage("sft", main)
