"""Can π0 tell a full correct rewrite from an answer-only or broken one? (docs/pipeline.md, "The gate keeps the reasoning")

1. `--build`: rewrites sft questions with π0 and the rewrite prompt (greedy), keeps those that
   pass the answer check and state every intermediate result of the expert solution, and derives
   three labelled examples from each:
   - full:        the rewrite itself (label YES),
   - answer_only: its last sentence that states the final answer (label NO),
   - wrong_steps: the rewrite with one intermediate result replaced by a wrong value everywhere,
                  final answer untouched (label NO).
   Writes tests/data/judge_labelled.jsonl (kept as test data).
2. Scores the judge (both prompt formats) and the gate's reasoning rule on that set.

    python perf/judge_accuracy.py --build --questions 120 > reports/judge_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlrewrite.config import load_params  # noqa: E402
from rlrewrite.device import weights_dtype  # noqa: E402
from rlrewrite.engines.hf_engine import HFGenerator  # noqa: E402
from rlrewrite.jsonl import read_jsonl  # noqa: E402
from rlrewrite.prompts import load_template, rewrite_prompt  # noqa: E402
from rlrewrite.reward.answers import matches_gold, parse_gold  # noqa: E402
from rlrewrite.reward.gate import (  # noqa: E402
    ANSWER_ONLY_MAX_WORDS,
    ReasoningRule,
    intermediate_results,
    numbers_in,
    word_count,
)
from rlrewrite.reward.scoring import BaseModelScorer  # noqa: E402

LABELLED = Path("tests/data/judge_labelled.jsonl")
MODEL_DIR = Path("models/base")


def answer_sentence(rewrite: str, answer: str) -> str | None:
    """The last sentence or line of the rewrite that states the final answer."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", rewrite) if p.strip()]
    for part in reversed(parts):
        if answer in numbers_in(part) or "\\boxed" in part:
            return part
    return None


def break_one_step(rewrite: str, steps: set[str]) -> str | None:
    """Replace one intermediate result by a wrong value in every place it appears."""
    for value in sorted(steps, key=lambda v: -len(v)):
        pattern = re.compile(rf"(?<![\d.,]){re.escape(value)}(?![\d]|\.\d)")
        if pattern.search(rewrite):
            wrong = str(int(float(value)) + 7) if float(value).is_integer() else str(float(value) + 7)
            return pattern.sub(wrong, rewrite)
    return None


def build(params, n_questions: int) -> list[dict]:
    records = read_jsonl(Path("data/prepared/sft.jsonl"))[:n_questions]
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=weights_dtype("auto"))
    template = load_template(params.rewriter.prompt_file, ("question", "solution"))
    generate = HFGenerator(model, tokenizer, 16, params.rewrite.max_new_tokens, 0.0)
    outputs = generate([rewrite_prompt(template, r["question"], r["solution"]) for r in records])
    labelled = []
    for record, completion in zip(records, outputs):
        text, cut = completion.text, completion.truncated
        steps = intermediate_results(record["solution"], record["question"], record["answer"])
        if cut or not steps or not matches_gold(text, parse_gold(record["answer"])):
            continue
        # full = states every intermediate result in at least ANSWER_ONLY_MAX_WORDS words
        if not steps <= numbers_in(text) or word_count(text) < ANSWER_ONLY_MAX_WORDS:
            continue
        base = {"id": record["id"], "question": record["question"], "answer": record["answer"],
                "solution": record["solution"]}
        labelled.append({**base, "kind": "full", "label": True, "candidate": text})
        short = answer_sentence(text, record["answer"])
        if short and not steps & numbers_in(short):  # a one-sentence rewrite may hold it all
            labelled.append({**base, "kind": "answer_only", "label": False, "candidate": short})
        broken = break_one_step(text, steps)
        if broken and matches_gold(broken, parse_gold(record["answer"])):
            labelled.append({**base, "kind": "wrong_steps", "label": False, "candidate": broken})
    return labelled


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--questions", type=int, default=120)
    args = parser.parse_args()
    params = load_params("params.yaml")
    torch.manual_seed(params.seed)
    if args.build:
        rows = build(params, args.questions)
        LABELLED.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"wrote {len(rows)} labelled examples to {LABELLED}", file=sys.stderr)
    rows = read_jsonl(LABELLED)
    labels = np.array([r["label"] for r in rows])
    kinds = np.array([r["kind"] for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float32)
    template = load_template(params.gate.judge_prompt_file, ("question", "answer", "candidate"))
    report = {"examples": len(rows), **{k: int((kinds == k).sum()) for k in np.unique(kinds)}}
    for chat in (False, True):
        scorer = BaseModelScorer(model, tokenizer, judge_template=template, batch_size=8,
                                 judge_chat=chat)
        p_yes = scorer.judge_yes_probability([r["question"] for r in rows],
                                             [r["answer"] for r in rows],
                                             [r["candidate"] for r in rows])
        verdict = p_yes >= 0.5
        name = "judge_chat" if chat else "judge_plain"
        report[f"{name}_accuracy"] = round(float((verdict == labels).mean()), 3)
        for kind in np.unique(kinds):
            report[f"{name}_yes_rate_{kind}"] = round(float(verdict[kinds == kind].mean()), 3)
        # does P(YES) at least rank full rewrites above the broken ones? (AUC)
        pos, neg = p_yes[labels], p_yes[~labels]
        report[f"{name}_auc"] = round(float((pos[:, None] > neg[None, :]).mean()), 3)
    cfg = params.gate.reasoning
    rule = ReasoningRule(True, cfg.min_step_share, cfg.min_length_ratio)
    kept = np.array([rule.keeps_reasoning(r["candidate"], r["solution"], r["question"],
                                          r["answer"]) for r in rows])
    report["rule_accuracy"] = round(float((kept == labels).mean()), 3)
    for kind in np.unique(kinds):
        report[f"rule_pass_rate_{kind}"] = round(float(kept[kinds == kind].mean()), 3)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
