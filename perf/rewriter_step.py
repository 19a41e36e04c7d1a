"""Benchmark: GRPO + LoRA steps of the rewriter on the prepared data, as the stage runs them.

Prints step time, the share of time spent generating and in reward scoring, peak memory and the
reward of the first and last steps. Needs `dvc repro prepare` first. Example:
    python perf/rewriter_step.py --steps 4
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback  # noqa: E402

from rlrewrite.config import load_params  # noqa: E402
from rlrewrite.jsonl import read_jsonl  # noqa: E402
from rlrewrite.train.grpo import build_trainer  # noqa: E402


class Timer(TrainerCallback):
    def __init__(self):
        self.steps: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(time.perf_counter() - self.start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    params = load_params(args.params)
    params = params.model_copy(update={"rewriter": params.rewriter.model_copy(
        update={"max_steps": args.steps, "save_steps": 10**6, "log_samples_every": 0})})
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer, reward, _ = build_trainer(params, Path("models/base"),
                                           read_jsonl("data/prepared/rl.jsonl"), Path(tmp),
                                           report_to=[], callbacks=[timer])
        generate_seconds = 0.0
        original_generate = trainer.model.generate if hasattr(trainer.model, "generate") else None

        def timed_generate(*a, **kw):
            nonlocal generate_seconds
            started = time.perf_counter()
            try:
                return original_generate(*a, **kw)
            finally:
                generate_seconds += time.perf_counter() - started

        if original_generate is not None:
            trainer.model.generate = timed_generate
        started = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - started

    cfg = params.rewriter
    logged = [e for e in trainer.state.log_history if "reward" in e]
    tokens = sum(e["completions/mean_length"] for e in logged) * cfg.num_generations * \
        cfg.questions_per_device * cfg.gradient_accumulation_steps
    print(f"steps: {len(timer.steps)}  rollouts/step: "
          f"{cfg.questions_per_device * cfg.gradient_accumulation_steps * cfg.num_generations}  "
          f"max_new_tokens: {params.rewrite.max_new_tokens}  precision: {params.precision}")
    print(f"step time: mean {sum(timer.steps) / len(timer.steps):.1f} s "
          f"(min {min(timer.steps):.1f}, max {max(timer.steps):.1f})")
    print(f"generation: {generate_seconds:.1f} s ({100 * generate_seconds / wall:.0f}% of wall), "
          f"{tokens / max(generate_seconds, 1e-9):.1f} completion tokens/s")
    print(f"reward scoring: {reward.scoring_seconds:.1f} s "
          f"({100 * reward.scoring_seconds / wall:.1f}% of wall)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print("reward per step:", [round(e["reward"], 3) for e in logged])


if __name__ == "__main__":
    main()
