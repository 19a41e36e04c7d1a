"""Stage `rewrite`: Generate–Verify–Fallback over the sft split with `rewrite.method`.

Writes data/rewritten/train.jsonl (one record per sft question, same order) and
metrics/rewrite.json: acceptance, attempts, π0's QA-style NLL of the targets versus the original
solutions, the targets' diversity, and whether the accepted rewrites kept the reasoning.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rlrewrite.jsonl import DataError, read_jsonl, write_jsonl
from rlrewrite.prompts import REWRITE_FIELDS, load_template
from rlrewrite.rewrite.methods import gate_verifier, rewrite_records, uses_rewriter
from rlrewrite.rewrite.select import pool_metrics, select_records
from rlrewrite.stage import finish_stage, open_stage, run_stage

MODEL_DIR = Path("models/base")
ADAPTER_DIR = Path("models/rewriter")
MERGED_DIR = Path("checkpoints/rewriter-merged")  # rl + vllm.rewriter_lora: merged (scratch)
SFT_DATA = Path("data/prepared/sft.jsonl")
POOL = Path("data/candidates/pool.jsonl")
OUTPUT = Path("data/rewritten/train.jsonl")
METRICS = Path("metrics/rewrite.json")
SAMPLE_ROWS = 30


def log_generation(generator, wall: float) -> None:
    import mlflow

    stats = generator.stats
    mlflow.log_metrics({"time/generation_seconds": stats.seconds,
                        "time/generation_tokens_per_second": stats.tokens_per_second,
                        "time/rewrite_wall_seconds": wall})
    if hasattr(generator, "startup_seconds"):
        mlflow.log_metric("time/engine_startup_seconds", generator.startup_seconds)
    print(f"rewrite: generated {stats.new_tokens} tokens in {stats.seconds:.0f} s "
          f"({stats.tokens_per_second:.1f} tok/s)")


def log_samples(out: list[dict], last: dict[int, str]) -> None:
    import mlflow

    sample = out[:SAMPLE_ROWS]
    mlflow.log_table({"question": [r["question"] for r in sample],
                      "original": [r["solution"] for r in sample],
                      "candidate": [last.get(i, "") for i in range(len(sample))],
                      "accepted": [r["rewritten"] for r in sample],
                      "target": [r["target"] for r in sample]},
                     artifact_file="rewrite_samples.json")


def read_pool(path: Path) -> dict[str, list[dict]]:
    if not path.is_file():
        raise DataError(f"{path}: no candidate pool (stage rewrite-candidates writes it for "
                        "rewrite.method select: `dvc repro rewrite-candidates`)")
    return {row["id"]: row["candidates"] for row in read_jsonl(path)}


def main() -> None:
    params = open_stage("rewrite")
    cfg, rewriter_cfg = params.rewrite, params.rewriter
    records = read_jsonl(SFT_DATA)
    if not records:
        raise DataError(f"{SFT_DATA}: no records")
    # the heavy libraries load once params and inputs have passed: a bad value fails in a second
    import mlflow
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlrewrite.device import precision_label, weights_dtype
    from rlrewrite.engines.adapters import load_rewriter
    from rlrewrite.engines.factory import make_generator
    from rlrewrite.reward.echo import InstructionEcho
    from rlrewrite.reward.gate import build_gate, build_scorer
    from rlrewrite.reward.scoring import MiniLMEmbedder
    from rlrewrite.rewrite.metrics import target_metrics
    from rlrewrite.tracking import stage_run

    with stage_run("rewrite", params.logged()):
        mlflow.set_tags({"method": cfg.method, "seed": params.seed})
        tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
        dtype = weights_dtype(params.precision)
        model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=dtype)
        rewriter = uses_rewriter(cfg.method)  # `select` reads the pool its own stage sampled
        if rewriter and params.engine == "hf":
            model = load_rewriter(model, ADAPTER_DIR, MODEL_DIR)  # π0 + LoRA; adapter off = π0
        scorer = build_scorer(params.gate, rewriter_cfg, model, tokenizer)  # π0, on transformers whatever the engine
        generator = None
        if cfg.method not in ("original", "select"):
            generator = make_generator(
                params.engine, model=model, tokenizer=tokenizer, base_dir=MODEL_DIR,
                adapter_dir=ADAPTER_DIR if rewriter else None, batch_size=cfg.generation_batch_size,
                max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=params.seed,
                dtype=dtype, vllm_cfg=params.vllm,
                merged_dir=MERGED_DIR)

        template = load_template(rewriter_cfg.prompt_file, REWRITE_FIELDS)
        started = time.perf_counter()
        selected = {}
        if cfg.method == "select":
            pool = read_pool(POOL)
            out = select_records(records, pool, cfg.select.rule, cfg.select.length_tolerance,
                                 params.seed)
            last = {}
            selected = pool_metrics(records, pool, cfg.select.length_tolerance, params.seed)
        else:
            gate = build_gate(params.gate, scorer, template)
            out, last = rewrite_records(records, cfg.method, template, generator,
                                        gate_verifier(gate), cfg.attempts)
        wall = time.perf_counter() - started
        write_jsonl(OUTPUT, out)

        metrics = {**target_metrics(out, scorer, MiniLMEmbedder(), tokenizer, params.seed,
                                    InstructionEcho(template)),
                   **selected}
        if generator is not None:
            metrics.update(generated_tokens=generator.stats.new_tokens,
                           generation_s=round(generator.stats.seconds, 1),
                           generation_tokens_per_second=round(generator.stats.tokens_per_second, 1))
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None})
        finish_stage(METRICS, metrics, precision_label(params.precision),
                     params.engine if generator is not None else None)
        if generator is not None:
            log_generation(generator, wall)
        log_samples(out, last)
        print("rewrite:", json.dumps(metrics))


if __name__ == "__main__":
    run_stage("rewrite", main)
