"""Stage `rollout-and-train-rewriter`: GRPO + LoRA on π0 with the group-level rewrite reward.

Writes the adapter to models/rewriter/, per-step rewards to metrics/rewriter_steps.tsv (for
`dvc plots`) and a summary to metrics/rewriter.json. An interrupted run resumes from its last
checkpoint in checkpoints/rewriter/ when rerun with the same inputs.

Only `rewrite.method: rl` uses the rewriter. For the other methods the stage trains nothing: it
writes models/rewriter/NOT_TRAINED.json, a header-only steps file and `trained: false`, so that a
sweep of `original`/`prompt`/`self` seeds does not pay for GRPO runs it never reads.
"""

from __future__ import annotations

import csv
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from rlrewrite.jsonl import read_jsonl, write_json
from rlrewrite.model_card import write_card
from rlrewrite.ranks import die_with_launcher, is_main_process
from rlrewrite.rewrite.methods import uses_rewriter
from rlrewrite.stage import finish_stage, open_stage, run_stage
from rlrewrite.train.checkpoints import fingerprint, launch_key, prepare_checkpoint_dir

MODEL_DIR = Path("models/base")
RL_DATA = Path("data/prepared/rl.jsonl")
ADAPTER_DIR = Path("models/rewriter")
CHECKPOINTS = Path("checkpoints/rewriter")
STEPS_TSV = Path("metrics/rewriter_steps.tsv")
METRICS = Path("metrics/rewriter.json")
NOT_TRAINED = ADAPTER_DIR / "NOT_TRAINED.json"

# TRL's log keys -> our column names
COLUMNS = {
    "reward": "reward",
    "rewrite/gate_pass_rate": "gate_pass_rate",
    "rewrite/answer_pass_rate": "answer_pass_rate",
    "rewrite/reasoning_pass_rate": "reasoning_pass_rate",
    "rewrite/echo_pass_rate": "echo_pass_rate",
    "rewrite/judge_pass_rate": "judge_pass_rate",
    "rewrite/answer_only_share": "answer_only_share",
    "rewrite/length_ratio": "length_ratio",
    "rewrite/truncated_share": "truncated_share",
    "rewrite/r_div_feasible_mean": "r_div",
    "rewrite/feasible_set_size": "feasible_set_size",
    "rewrite/dead_group_share": "dead_group_share",
    "rewrite/qa_nll_feasible_mean": "qa_nll",
    "rewrite/qa_nll_group_spread": "qa_nll_group_spread",
    "rewrite/qa_nll_vs_expert": "qa_nll_vs_expert",
    "rewrite/r_anchor_feasible_mean": "r_anchor",
    "kl": "kl",
    "completions/mean_length": "completion_length",
}


class LeftOutRollouts(logging.Filter):
    """TRL prints a whole prompt and completion each time every reward is None. Our reward
    returns None on purpose for truncated rollouts (left out of the group statistics), and
    `truncated_share` counts them per step, so the dump is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "All reward functions returned None" not in record.getMessage()


def step_rows(log_history: list[dict]) -> list[dict]:
    rows = []
    for entry in log_history:
        if "reward" not in entry:
            continue
        row = {"step": entry["step"]}
        # TRL logs None for a metric that was NaN (undefined) in every batch of the step
        row.update({name: round(float(entry[key]) if entry.get(key) is not None else float("nan"), 6)
                    for key, name in COLUMNS.items()})
        rows.append(row)
    return rows


def throughput(log_history: list[dict], completions_per_step: int, wall: float) -> dict:
    """Tokens the policy trained on (TRL's running `num_tokens`: prompts + completions) and
    generated, and the training loop's wall time (engine start-up and model loading excluded)."""
    logged = [e for e in log_history if "num_tokens" in e]
    completion = [e["completions/mean_length"] * completions_per_step for e in logged]
    return {"train_tokens": int(logged[-1]["num_tokens"]) if logged else 0,
            "generated_tokens": int(sum(completion)),
            "train_s": round(wall, 1)}


def summarise(rows: list[dict], skipped: int) -> dict:
    fifth = max(1, len(rows) // 5)
    summary = {"steps": len(rows), "skipped_questions": skipped}
    for name in [c for c in COLUMNS.values() if c not in ("judge_pass_rate",)]:
        values = np.array([row[name] for row in rows], dtype=float)
        for label, part in (("first_fifth", values[:fifth]), ("last_fifth", values[-fifth:]),
                            ("mean", values)):
            finite = part[~np.isnan(part)]
            # None (JSON null) where undefined in every step: DVC and MLflow reject NaN
            summary[f"{name}_{label}"] = round(float(finite.mean()), 4) if finite.size else None
    return summary


def write_steps(rows: list[dict]) -> None:
    STEPS_TSV.parent.mkdir(parents=True, exist_ok=True)
    with STEPS_TSV.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", *COLUMNS.values()], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def skip_training(params) -> None:
    """The outputs of a stage that trains nothing: `rewrite.method` does not use the rewriter."""
    method = params.rewrite.method
    shutil.rmtree(ADAPTER_DIR, ignore_errors=True)
    write_json(NOT_TRAINED, {"trained": False, "method": method,
                             "why": "only rewrite.method=rl uses the rewriter"})
    write_steps([])
    from rlrewrite.tracking import stage_run  # MLflow: only once the stage has work to record

    with stage_run("rollout-and-train-rewriter", params.logged()):
        finish_stage(METRICS, {"trained": False, "method": method})
    print(f"rollout-and-train-rewriter: rewrite.method={method} does not use the rewriter; "
          f"nothing trained")


def main() -> None:
    die_with_launcher()
    params = open_stage("rollout-and-train-rewriter")
    if not uses_rewriter(params.rewrite.method, params.rewrite.select.generator):
        if is_main_process():
            skip_training(params)
        return
    # the heavy libraries load only to train: a bad value or another method ends in a second
    import mlflow

    from rlrewrite.device import precision_label
    from rlrewrite.engines.adapters import save_rewriter
    from rlrewrite.tracking import stage_run
    from rlrewrite.train.grpo import StepTimer, build_trainer

    cfg = params.rewriter
    records = read_jsonl(RL_DATA)
    logging.getLogger("trl.trainer.grpo_trainer").addFilter(LeftOutRollouts())
    key = fingerprint(params.seed, params.engine, params.precision, cfg.model_dump(),
                      params.gate.model_dump(), params.rewrite.max_new_tokens, records,
                      Path(cfg.prompt_file).read_text(), (MODEL_DIR / "config.json").read_text(),
                      launch_key(params.launch.processes, params.launch.config_file))
    main_process = is_main_process()
    resume = prepare_checkpoint_dir(CHECKPOINTS, key, owner=main_process)

    with stage_run("rollout-and-train-rewriter", params.logged()) as run:
        def log_samples(step: int, table: dict) -> None:
            mlflow.log_table(table, artifact_file=f"rewriter_samples/step_{step:05d}.json",
                             run_id=run.info.run_id)

        timer = StepTimer()
        trainer, reward, skipped = build_trainer(params, MODEL_DIR, records, CHECKPOINTS,
                                                 ["mlflow"], [timer],
                                                 log_samples if main_process else None)
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=resume)
        wall = time.perf_counter() - started
        if not main_process:  # under several processes, the main one writes and logs
            return

        shutil.rmtree(ADAPTER_DIR, ignore_errors=True)
        save_rewriter(trainer.model, trainer.processing_class, ADAPTER_DIR, MODEL_DIR)

        rows = step_rows(trainer.state.log_history)
        write_steps(rows)
        summary = summarise(rows, skipped)
        per_step = (cfg.num_generations * cfg.questions_per_device
                    * cfg.gradient_accumulation_steps * trainer.accelerator.num_processes)
        summary.update(throughput(trainer.state.log_history, per_step, wall),
                       processes=trainer.accelerator.num_processes)
        finish_stage(METRICS, {"trained": True, **summary}, precision_label(params.precision),
                     params.engine)
        write_card(ADAPTER_DIR, title="Rewriter: a GRPO-trained LoRA on π0",
                   summary=f"Rewrites expert solutions into π0's QA style ({len(records)} questions,"
                           f" {summary.get('steps')} GRPO steps); load it on the base model.",
                   base_model=params.model.name, data=str(RL_DATA),
                   params={"seed": params.seed, "precision": params.precision,
                           "gate": params.gate.model_dump(), "rewriter": cfg.model_dump(),
                           "rewrite": {"max_new_tokens": params.rewrite.max_new_tokens}},
                   metrics=summary,
                   tags=["grpo", "lora", "rewriter"])
        mlflow.log_metrics({f"summary/{k}": v for k, v in summary.items() if v is not None})
        mlflow.log_metrics({"time/wall_seconds": wall,
                            "time/step_seconds_mean": float(np.mean(timer.step_seconds or [0])),
                            "time/reward_scoring_seconds": reward.scoring_seconds,
                            "time/reward_scoring_share": reward.scoring_seconds / max(wall, 1e-9)})
        print("rollout-and-train-rewriter:", summary)
    shutil.rmtree(CHECKPOINTS, ignore_errors=True)


if __name__ == "__main__":
    run_stage("rollout-and-train-rewriter", main)
