"""Benchmark: the `hf` engine versus the `vllm` engine on the same prompts, model and sampling.

(a) the rewrite stage's workload: the rewrite prompt over the first N sft questions, greedy,
    `rewrite.max_new_tokens`, with the trained rewriter (peft in transformers; for vLLM the
    adapter served through LoRARequest and merged into a full model); prints tokens/s, wall time,
    start-up, the hf/vllm agreement rate of the greedy outputs.
(b) one GRPO step's rollouts: `rewriter.questions_per_device x gradient_accumulation_steps`
    questions x K samples at `rewriter.temperature`, `rewrite.max_new_tokens` tokens.

Needs `dvc repro rollout-and-train-rewriter` first (models/base, models/rewriter, data/prepared).
    python perf/engines.py --questions 400
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import tempfile
import time
from pathlib import Path

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from rlrewrite.config import load_params  # noqa: E402
from rlrewrite.device import weights_dtype  # noqa: E402
from rlrewrite.engines.adapters import load_rewriter  # noqa: E402
from rlrewrite.engines.hf_engine import HFGenerator  # noqa: E402
from rlrewrite.engines.vllm_engine import VLLMGenerator, merge_adapter  # noqa: E402
from rlrewrite.jsonl import read_jsonl  # noqa: E402
from rlrewrite.prompts import (
    load_template,  # noqa: E402
    rewrite_prompt,  # noqa: E402
)

BASE, ADAPTER = Path("models/base"), Path("models/rewriter")


def report(name: str, wall: float, startup: float, stats) -> dict:
    row = {"engine": name, "startup_s": round(startup, 1), "generate_s": round(stats.seconds, 1),
           "wall_s": round(wall, 1), "tokens": stats.new_tokens,
           "tok_s": round(stats.tokens_per_second, 1),
           "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def run_hf(conversations, tokenizer, dtype, batch_size, max_new, temperature, seed, adapter):
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(BASE, dtype=dtype)
    if adapter:
        model = load_rewriter(model, ADAPTER, BASE)
    torch.manual_seed(seed)
    generator = HFGenerator(model, tokenizer, batch_size, max_new, temperature)
    startup = time.perf_counter() - started
    outputs = generator(conversations, "hf")
    return outputs, report("hf" + ("+peft" if adapter else ""), time.perf_counter() - started,
                           startup, generator.stats)


def run_vllm(name, conversations, tokenizer, dtype, max_new, temperature, seed, cfg,
             model_dir=BASE, lora_dir=None, extra_startup=0.0):
    started = time.perf_counter()
    generator = VLLMGenerator(model_dir, tokenizer, max_new, temperature, seed,
                              str(dtype).removeprefix("torch."), cfg, lora_dir)
    startup = time.perf_counter() - started + extra_startup
    outputs = generator(conversations, name)
    row = report(name, time.perf_counter() - started + extra_startup, startup, generator.stats)
    del generator
    gc.collect()
    return outputs, row


def agreement(a: list[str], b: list[str]) -> float:
    """Share of identical outputs over the shorter list (the prompts both saw)."""
    pairs = list(zip(a, b))
    return sum(x == y for x, y in pairs) / len(pairs)


def shared_prefix(a: list[str], b: list[str]) -> float:
    """Mean share of the longer text that both outputs share from the start: where greedy
    decoding of the two engines parts ways."""
    shares = [len(os.path.commonprefix([x, y])) / max(len(x), len(y), 1) for x, y in zip(a, b)]
    return sum(shares) / len(shares)


def compare(name: str, hf_row, row, hf, outputs) -> None:
    if hf_row is None:
        return
    print(f"(a) vllm {name} / hf: wall {hf_row['wall_s'] / row['wall_s']:.2f}x, "
          f"tokens/s {row['tok_s'] / hf_row['tok_s']:.2f}x, "
          f"greedy agreement with hf {agreement(outputs, hf):.3f} "
          f"(shared prefix {shared_prefix(outputs, hf):.3f} of the text)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=400, help="(a): sft questions")
    parser.add_argument("--part", choices=["rewrite", "rollout", "all"], default="all")
    parser.add_argument("--served", type=int, default=32,
                        help="(a): prompts for the served-LoRA run (0: skip it; it is slow on CPU)")
    parser.add_argument("--skip-hf", action="store_true", help="(a): vLLM only")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    params = load_params(args.params)
    dtype = weights_dtype(params.precision)
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    template = load_template(params.rewriter.prompt_file, ("question", "solution"))
    print(f"model {BASE} dtype {dtype} threads {torch.get_num_threads()}")

    if args.part in ("rewrite", "all"):
        records = read_jsonl("data/prepared/sft.jsonl")[:args.questions]
        prompts = [rewrite_prompt(template, r["question"], r["solution"]) for r in records]
        cfg = params.rewrite
        print(f"(a) rewrite: {len(prompts)} prompts, greedy, {cfg.max_new_tokens} new tokens")
        hf = hf_row = None
        if not args.skip_hf:
            hf, hf_row = run_hf(prompts, tokenizer, dtype, cfg.generation_batch_size, cfg.max_new_tokens, 0.0,
                                params.seed, adapter=True)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            merged_dir = merge_adapter(BASE, ADAPTER, Path(tmp) / "merged", dtype)
            merge_seconds = time.perf_counter() - started
            print(f"merge_and_unload + save: {merge_seconds:.1f} s")
            merged, merged_row = run_vllm("vllm+merged", prompts, tokenizer, dtype,
                                          cfg.max_new_tokens, 0.0, params.seed, params.vllm,
                                          model_dir=merged_dir, extra_startup=merge_seconds)
        compare(f"merged ({len(prompts)} prompts)", hf_row, merged_row, hf, merged)
        if args.served:
            subset = prompts[:args.served]
            served, served_row = run_vllm("vllm+lora-served", subset, tokenizer, dtype,
                                          cfg.max_new_tokens, 0.0, params.seed, params.vllm,
                                          lora_dir=ADAPTER)
            print(f"(a) served LoRA on the first {len(subset)} prompts: greedy agreement with "
                  f"merged {agreement(served, merged):.3f}"
                  + ("" if hf is None else f", with hf {agreement(served, hf):.3f}"))

    if args.part in ("rollout", "all"):
        cfg = params.rewriter
        questions = cfg.questions_per_device * cfg.gradient_accumulation_steps
        records = read_jsonl("data/prepared/rl.jsonl")[:questions]
        prompts = [rewrite_prompt(template, r["question"], r["solution"])
                   for r in records for _ in range(cfg.num_generations)]
        print(f"(b) one GRPO step's rollouts: {len(prompts)} samples, temperature "
              f"{cfg.temperature}, {params.rewrite.max_new_tokens} new tokens")
        _, hf_row = run_hf(prompts, tokenizer, dtype, len(prompts), params.rewrite.max_new_tokens,
                           cfg.temperature, params.seed, adapter=True)
        # TRL's colocated vLLM holds the policy with the LoRA merged in (synced every step)
        with tempfile.TemporaryDirectory() as tmp:
            merged_dir = merge_adapter(BASE, ADAPTER, Path(tmp) / "merged", dtype)
            _, vllm_row = run_vllm("vllm", prompts, tokenizer, dtype, params.rewrite.max_new_tokens,
                                   cfg.temperature, params.seed, params.vllm, model_dir=merged_dir)
        print(f"(b) vllm / hf: generation {hf_row['generate_s'] / vllm_row['generate_s']:.2f}x, "
              f"tokens/s {vllm_row['tok_s'] / hf_row['tok_s']:.2f}x; vLLM start-up "
              f"{vllm_row['startup_s']} s once per stage")


if __name__ == "__main__":
    main()
