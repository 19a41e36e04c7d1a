"""Benchmark: peak memory and step time of the `sft` stage's training, as the stage builds it.

Trains on the stage's input (data/rewritten/train.jsonl) with build_sft_trainer, then saves the
model as the stage does. A thread samples the resident set size (RSS) every 20 ms; prints RSS
after loading, after every optimizer step and after saving, and the peak. `--longest N` keeps only
the N longest examples, so a few steps meet the largest batch shapes. Settings are params.yaml's
`sft` section, overridable with `--set key=value` (YAML values). Needs `dvc repro rewrite` first.
    python perf/sft_memory.py                          # the whole stage's training
    python perf/sft_memory.py --longest 64 --set per_device_train_batch_size=8
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml  # noqa: E402
from transformers import AutoTokenizer, TrainerCallback  # noqa: E402

from rlrewrite.config import SFTParams, load_params  # noqa: E402
from rlrewrite.jsonl import read_jsonl  # noqa: E402
from rlrewrite.train.sft import build_sft_trainer, sft_dataset  # noqa: E402

PAGE = resource.getpagesize()


def rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**30


class RSSSampler(threading.Thread):
    def __init__(self, every: float = 0.02):
        super().__init__(daemon=True)
        self.every, self.peak, self.running = every, 0.0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_gib())
            time.sleep(self.every)


class StepLog(TrainerCallback):
    def __init__(self, sampler: RSSSampler):
        self.sampler, self.rows = sampler, []

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        row = (state.global_step, time.perf_counter() - self.started, rss_gib(), self.sampler.peak)
        self.rows.append(row)
        print("step {} {:.1f} s  RSS {:.2f} GiB  peak so far {:.2f} GiB".format(*row), flush=True)


def override(cfg: SFTParams, assignments: list[str]) -> SFTParams:
    values = cfg.model_dump()
    for assignment in assignments:
        key, _, text = assignment.partition("=")
        if key not in values:
            sys.exit(f"--set {assignment}: sft has no key '{key}' (keys: {', '.join(values)})")
        values[key] = yaml.safe_load(text)
    return SFTParams.model_validate(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/rewritten/train.jsonl")
    parser.add_argument("--longest", type=int, default=0, help="keep the N longest examples")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params.yaml sft key, e.g. per_device_train_batch_size=8")
    parser.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                        help="set an SFTConfig field the params do not expose, "
                             "e.g. gradient_checkpointing=true")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    params = load_params(args.params)
    cfg = override(params.sft, args.set)
    records = read_jsonl(args.data)
    if args.longest:
        tokenizer = AutoTokenizer.from_pretrained("models/base")
        size = {id(r): len(tokenizer(r["question"] + r["target"]).input_ids) for r in records}
        records = sorted(records, key=lambda r: -size[id(r)])[:args.longest]
    sampler = RSSSampler()
    sampler.start()
    steps = StepLog(sampler)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_sft_trainer(cfg, params.seed, Path("models/base"),
                                    sft_dataset(records, args.data), Path(tmp) / "checkpoints",
                                    report_to=[], callbacks=[steps], precision=params.precision)
        for assignment in args.arg:
            key, _, text = assignment.partition("=")
            if not hasattr(trainer.args, key):
                sys.exit(f"--arg {assignment}: SFTConfig has no field '{key}'")
            setattr(trainer.args, key, yaml.safe_load(text))
        loaded = rss_gib()
        started = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - started
        trained = rss_gib()
        trainer.save_model(str(Path(tmp) / "model"))
        saved = rss_gib()
    sampler.running = False
    sampler.join()

    step_seconds = [row[1] for row in steps.rows]
    print(f"settings: {cfg.model_dump(exclude={'lora'})}")
    print(f"examples {len(records)}  steps {len(step_seconds)}  train wall {wall:.1f} s  "
          f"step mean {sum(step_seconds) / len(step_seconds):.1f} s (max {max(step_seconds):.1f})")
    print(f"RSS GiB: loaded {loaded:.2f}  after training {trained:.2f}  after save {saved:.2f}  "
          f"sampled peak {sampler.peak:.2f}  "
          f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}")


if __name__ == "__main__":
    main()
