"""Stage `rewrite-candidates`: the pool `rewrite.method: select` chooses from.

Samples `rewrite.select.candidates` rewrites per sft question from `rewrite.select.generator`
(`prompt`: π0 with the rewrite prompt; `rl`: the trained rewriter), and keeps for each its gate
verdict, π0's QA-style NLL and its length in tokens (src/rlrewrite/rewrite/select.py). Writes
data/candidates/pool.jsonl and metrics/candidates.json. For any other method the stage samples
nothing and writes data/candidates/NOT_USED.json, so a sweep over `rewrite.select.rule` reruns
only `rewrite` and what follows.
"""

from __future__ import annotations

from pathlib import Path

from rlrewrite.jsonl import DataError, read_jsonl, write_json, write_jsonl
from rlrewrite.prompts import REWRITE_FIELDS, load_template, rewrite_prompt
from rlrewrite.stage import finish_stage, open_stage, run_stage

MODEL_DIR = Path("models/base")
ADAPTER_DIR = Path("models/rewriter")
MERGED_DIR = Path("checkpoints/rewriter-merged")
SFT_DATA = Path("data/prepared/sft.jsonl")
OUT_DIR = Path("data/candidates")
POOL = OUT_DIR / "pool.jsonl"
NOT_USED = OUT_DIR / "NOT_USED.json"
METRICS = Path("metrics/candidates.json")


def main() -> None:
    params = open_stage("rewrite-candidates")
    cfg, select, rewriter_cfg = params.rewrite, params.rewrite.select, params.rewriter
    records = read_jsonl(SFT_DATA) if cfg.method == "select" else []
    if cfg.method == "select" and not records:
        raise DataError(f"{SFT_DATA}: no records")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in (POOL, NOT_USED):
        stale.unlink(missing_ok=True)
    if cfg.method != "select":
        write_json(NOT_USED, {"method": cfg.method, "reason": "only rewrite.method select reads "
                              "a candidate pool"})
        write_json(METRICS, {"sampled": False})
        return
    # the heavy libraries load only to sample: a bad value or another method ends in a second
    import mlflow
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlrewrite.device import precision_label, weights_dtype
    from rlrewrite.engines.adapters import load_rewriter
    from rlrewrite.engines.factory import make_generator
    from rlrewrite.reward.gate import build_gate, build_scorer
    from rlrewrite.tracking import stage_run

    with stage_run("rewrite-candidates", params.logged()):
        mlflow.set_tags({"method": "select", "generator": select.generator, "seed": params.seed})
        tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
        dtype = weights_dtype(params.precision)
        model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=dtype)
        rewriter = select.generator == "rl"
        if rewriter and params.engine == "hf":
            model = load_rewriter(model, ADAPTER_DIR, MODEL_DIR)
        scorer = build_scorer(params.gate, rewriter_cfg, model, tokenizer)
        generator = make_generator(
            params.engine, model=model, tokenizer=tokenizer, base_dir=MODEL_DIR,
            adapter_dir=ADAPTER_DIR if rewriter else None, batch_size=cfg.generation_batch_size,
            max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=params.seed,
            dtype=dtype, vllm_cfg=params.vllm, merged_dir=MERGED_DIR)
        template = load_template(rewriter_cfg.prompt_file, REWRITE_FIELDS)
        k = select.candidates
        rows = [r for r in records for _ in range(k)]
        outputs = generator([rewrite_prompt(template, r["question"], r["solution"]) for r in rows],
                            f"candidates x{k}")
        texts = [o.text for o in outputs]
        checks = build_gate(params.gate, scorer, template)(
            texts, [r["question"] for r in rows], [r["answer"] for r in rows],
            [r["solution"] for r in rows], [o.truncated for o in outputs])
        nll = scorer.qa_nll([r["question"] for r in rows], texts)
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        pool = []
        for i, record in enumerate(records):
            span = range(i * k, (i + 1) * k)
            pool.append({"id": record["id"], "candidates": [
                {"text": texts[j], "passed": bool(checks.passed[j]), "nll": round(float(nll[j]), 5),
                 "tokens": lengths[j], "truncated": outputs[j].truncated} for j in span]})
        write_jsonl(POOL, pool)
        metrics = {"sampled": True, "questions": len(records), "candidates_per_question": k,
                   "pass_rate": round(float(checks.passed.mean()), 4),
                   "generated_tokens": generator.stats.new_tokens,
                   "generation_s": round(generator.stats.seconds, 1)}
        mlflow.log_metrics({k_: v for k_, v in metrics.items() if isinstance(v, (int, float))})
        finish_stage(METRICS, metrics, precision_label(params.precision), params.engine)
        print("rewrite-candidates:", metrics)


if __name__ == "__main__":
    run_stage("rewrite-candidates", main)
