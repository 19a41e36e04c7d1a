"""Stage `rewrite`: Generate–Verify–Fallback over the sft split with `rewrite.method`.

Writes data/rewritten/train.jsonl (one record per sft question, same order) and
metrics/rewrite.json: acceptance, attempts, π0's QA-style NLL of the targets versus the original
solutions, and the targets' diversity.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlrewrite.config import ParamsError, load_params
from rlrewrite.dataset_metrics import distinct_n, embedding_spread, self_bleu
from rlrewrite.generation import HFGenerator
from rlrewrite.jsonl import DataError, read_jsonl, write_json, write_jsonl
from rlrewrite.gate import build_gate, build_scorer, is_answer_only, word_count
from rlrewrite.precision import weights_dtype
from rlrewrite.resources import log_usage, stage_usage
from rlrewrite.prompts import load_template
from rlrewrite.rewrite_methods import rewrite_records
from rlrewrite.rewriter_adapter import AdapterError, load_rewriter
from rlrewrite.scoring import MiniLMEmbedder
from rlrewrite.tracking import stage_run
from rlrewrite.vllm_engine import EngineError

MODEL_DIR = Path("models/base")
ADAPTER_DIR = Path("models/rewriter")
MERGED_DIR = Path("checkpoints/rewriter-merged")  # rl + vllm.rewriter_lora: merged (scratch)
SFT_DATA = Path("data/prepared/sft.jsonl")
OUTPUT = Path("data/rewritten/train.jsonl")
METRICS = Path("metrics/rewrite.json")
SELF_BLEU_TEXTS = 200
SAMPLE_ROWS = 30


def vllm_generator(params, tokenizer, dtype):
    """The vLLM engine over π0, or over the rewriter for `rl` (served as a LoRA, or merged)."""
    from rlrewrite.rewriter_adapter import check_adapter
    from rlrewrite.vllm_engine import VLLMGenerator, merge_adapter

    cfg = params.rewrite
    model_dir, lora_dir = MODEL_DIR, None
    if cfg.method == "rl":
        check_adapter(ADAPTER_DIR, MODEL_DIR)
        if params.vllm.rewriter_lora == "served":
            lora_dir = ADAPTER_DIR
        else:
            model_dir = merge_adapter(MODEL_DIR, ADAPTER_DIR, MERGED_DIR, dtype)
    generator = VLLMGenerator(model_dir, tokenizer, cfg.max_new_tokens, cfg.temperature,
                              params.seed, str(dtype).removeprefix("torch."), params.vllm,
                              lora_dir)
    mlflow.log_metric("time/engine_startup_seconds", generator.startup_seconds)
    return generator


def reasoning_metrics(out: list[dict], accepted: list[dict]) -> dict:
    """Did the rewrites keep the reasoning? Answer-only share of the accepted rewrites, and
    lengths (words) relative to the expert solutions they replace."""
    def ratio(rows, field):
        return sum(word_count(r[field]) for r in rows) / max(1, sum(word_count(r["solution"])
                                                                   for r in rows))

    answer_only = [is_answer_only(r["target"], r["solution"], r["question"], r["answer"])
                   for r in accepted]
    return {
        "accepted_answer_only_share": round(float(np.mean(answer_only)), 4) if accepted else None,
        "accepted_length_ratio": round(ratio(accepted, "target"), 4) if accepted else None,
        "target_length_ratio": round(ratio(out, "target"), 4),
    }


def main() -> None:
    params = load_params("params.yaml")
    cfg, gate_cfg = params.rewrite, params.rewriter
    records = read_jsonl(SFT_DATA)
    if not records:
        raise DataError(f"{SFT_DATA}: no records")

    with stage_run("rewrite", params.model_dump(include={"seed", "engine", "vllm", "rewrite"})):
        mlflow.set_tags({"method": cfg.method, "seed": params.seed})
        tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
        dtype = weights_dtype(cfg.precision)
        model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=dtype)
        if cfg.method == "rl" and params.engine == "hf":
            model = load_rewriter(model, ADAPTER_DIR, MODEL_DIR)  # π0 + LoRA; adapter off = π0
        # π0 scores on the transformers model whatever the engine
        scorer = build_scorer(gate_cfg, model, tokenizer)
        gate = build_gate(gate_cfg, scorer)  # the reward's gate, unchanged

        generator = None
        if cfg.method != "original" and params.engine == "hf":
            import torch
            torch.manual_seed(params.seed)
            generator = HFGenerator(model, tokenizer, cfg.batch_size, cfg.max_new_tokens,
                                    cfg.temperature)
        elif cfg.method != "original":
            generator = vllm_generator(params, tokenizer, dtype)

        def verify(batch: list[dict], outputs: list[str]) -> list[bool]:
            checks = gate(outputs, [r["question"] for r in batch], [r["answer"] for r in batch],
                          [r["solution"] for r in batch], generator.last_truncated)
            return [bool(p) for p in checks.passed]

        template = load_template(gate_cfg.prompt_file, ("question", "solution"))
        started = time.perf_counter()
        out, last = rewrite_records(records, cfg.method, template, generator, verify, cfg.attempts)
        wall = time.perf_counter() - started
        assert [r["id"] for r in out] == [r["id"] for r in records]
        write_jsonl(OUTPUT, out)

        targets = [r["target"] for r in out]
        questions = [r["question"] for r in out]
        nll_targets = scorer.qa_nll(questions, targets)
        nll_original = scorer.qa_nll(questions, [r["solution"] for r in out])
        embeddings = MiniLMEmbedder().embed(targets)
        lengths = [len(ids) for ids in tokenizer(targets, add_special_tokens=False)["input_ids"]]
        attempted = [r for r in out if r["attempts"] > 0]
        accepted = [r for r in out if r["rewritten"]]
        metrics = {
            "examples": len(out),
            "acceptance_rate": round(float(np.mean([r["rewritten"] for r in out])), 4),
            "fallback_rate": round(sum(not r["rewritten"] for r in attempted) / len(out), 4),
            "attempts_mean": round(float(np.mean([r["attempts"] for r in out])), 4),
            "qa_nll_targets": round(float(nll_targets.mean()), 4),
            "qa_nll_original": round(float(nll_original.mean()), 4),
            "qa_nll_shift": round(float(nll_targets.mean() - nll_original.mean()), 4),
            "distinct_1": round(distinct_n(targets, 1), 4),
            "distinct_2": round(distinct_n(targets, 2), 4),
            "self_bleu": round(self_bleu(targets, SELF_BLEU_TEXTS, params.seed), 3),
            "embedding_spread": round(embedding_spread(embeddings), 4),
            "target_tokens_mean": round(float(np.mean(lengths)), 2),
            **reasoning_metrics(out, accepted),
        }
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None})
        usage = stage_usage(str(dtype).removeprefix("torch.").replace("bfloat16", "bf16")
                            .replace("float32", "fp32"))
        write_json(METRICS, {**metrics, **usage})
        log_usage(usage)
        if generator is not None:
            mlflow.log_metrics({"time/generation_seconds": generator.stats.seconds,
                                "time/generation_tokens_per_second": generator.stats.tokens_per_second,
                                "time/rewrite_wall_seconds": wall})
            print(f"rewrite: generated {generator.stats.new_tokens} tokens in "
                  f"{generator.stats.seconds:.0f} s ({generator.stats.tokens_per_second:.1f} tok/s)")
        sample = out[:SAMPLE_ROWS]
        mlflow.log_table({"question": [r["question"] for r in sample],
                          "original": [r["solution"] for r in sample],
                          "candidate": [last.get(i, "") for i in range(len(sample))],
                          "accepted": [r["rewritten"] for r in sample],
                          "target": [r["target"] for r in sample]},
                         artifact_file="rewrite_samples.json")
        print("rewrite:", json.dumps(metrics))


if __name__ == "__main__":
    try:
        main()
    except (ParamsError, DataError, AdapterError, EngineError) as exc:
        sys.exit(f"rewrite: {exc}")
