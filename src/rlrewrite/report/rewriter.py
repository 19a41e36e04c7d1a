"""Did the rewriter keep the reasoning? One row per DVC experiment, from `dvc exp show --json`.

    python -m rlrewrite.report rewriter --prefix gate- --out reports/rewriter_runs.md --doc docs/experiments.md

For each finished experiment whose name starts with `--prefix`: seed, engine, the rewriter's
gate pass rate and answer-only share (first → last fifth of its GRPO steps), and the `rewrite`
stage's acceptance, answer-only share of the accepted rewrites, target length relative to the
expert solutions and π0 NLL shift; then whether each meets the non-collapse criteria. Running or
failed experiments are listed as such, never dropped. Experiments of every commit are read
(`--all-commits`), so runs made before a code change stay in the table. With `--doc`, the
table also replaces what lies between the `rewriter-runs` markers of that file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rlrewrite.experiments import experiments as all_experiments
from rlrewrite.markers import fill_markers

# a run "keeps the reasoning" when all of these hold (issue 11's criteria)
MAX_ANSWER_ONLY = 0.05
MIN_LENGTH_RATIO = 0.7
# a run "aligns" its targets when all of these hold (issue 28's criteria): targets more likely
# under π0 than the expert solutions, of their length, at least as diverse, and the rewrites'
# π0 NLL falling during training
MAX_ALIGNED_SHIFT = -0.1
ALIGNED_LENGTH = (0.8, 1.25)


def experiments(prefix: str, show_json: str | None) -> list[dict]:
    rows = all_experiments(prefix, show_json)
    return sorted(rows, key=lambda r: (r["params"].get("engine", ""), r["params"].get("seed", 0)))


def summarise(row: dict) -> dict:
    trainer = row["metrics"].get("metrics/rewriter.json", {})
    rewrite = row["metrics"].get("metrics/rewrite.json", {})
    out = {"name": row["name"], "state": row["state"], "seed": row["params"].get("seed"),
           "engine": row["params"].get("engine")}
    for key in ("gate_pass_rate_first_fifth", "gate_pass_rate_last_fifth",
                "answer_only_share_first_fifth", "answer_only_share_last_fifth",
                "truncated_share_mean", "completion_length_mean", "time_s", "peak_rss_gib",
                "qa_nll_vs_expert_first_fifth", "qa_nll_vs_expert_last_fifth"):
        out[f"rewriter_{key}"] = trainer.get(key)
    for key in ("acceptance_rate", "accepted_answer_only_share", "instruction_echo_share",
                "accepted_length_ratio",
                "target_length_ratio", "qa_nll_shift", "embedding_spread",
                "embedding_spread_original", "time_s", "peak_rss_gib"):
        out[f"rewrite_{key}"] = rewrite.get(key)
    if row["state"] == "done" and None not in (out["rewrite_accepted_answer_only_share"],
                                               out["rewriter_gate_pass_rate_last_fifth"]):
        out["keeps_reasoning"] = (
            out["rewrite_accepted_answer_only_share"] <= MAX_ANSWER_ONLY
            and out["rewrite_target_length_ratio"] >= MIN_LENGTH_RATIO
            and out["rewriter_gate_pass_rate_last_fifth"] > out["rewriter_gate_pass_rate_first_fifth"])
    aligned = ("rewrite_qa_nll_shift", "rewrite_target_length_ratio", "rewrite_embedding_spread",
               "rewrite_embedding_spread_original", "rewriter_qa_nll_vs_expert_first_fifth",
               "rewriter_qa_nll_vs_expert_last_fifth")
    if row["state"] == "done" and all(out[k] is not None for k in aligned):
        out["aligns"] = (
            out["rewrite_qa_nll_shift"] <= MAX_ALIGNED_SHIFT
            and ALIGNED_LENGTH[0] <= out["rewrite_target_length_ratio"] <= ALIGNED_LENGTH[1]
            and out["rewrite_embedding_spread"] >= out["rewrite_embedding_spread_original"]
            and out["rewriter_qa_nll_vs_expert_last_fifth"]
            < out["rewriter_qa_nll_vs_expert_first_fifth"])
    return out


def fmt(value, digits=2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| run | engine | seed | gate pass, first → last fifth | answer-only rollouts, first → last "
        "| rl acceptance | answer-only accepted | prompt echo in targets "
        "| length ratio, accepted / all targets "
        "| π0 NLL shift | NLL vs expert during RL, first → last fifth | spread, targets / expert "
        "| rewriter min | rewrite min | peak GiB | keeps reasoning | aligns |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["state"] != "done":
            lines.append(f"| {r['name']} | {r['engine']} | {r['seed']} | {r['state']} |"
                         + " |" * 13)
            continue
        minutes = [None if r[k] is None else r[k] / 60 for k in ("rewriter_time_s", "rewrite_time_s")]
        peak = max((v for v in (r["rewriter_peak_rss_gib"], r["rewrite_peak_rss_gib"]) if v),
                   default=None)
        lines.append(
            f"| {r['name']} | {r['engine']} | {r['seed']} "
            f"| {fmt(r['rewriter_gate_pass_rate_first_fifth'])} → {fmt(r['rewriter_gate_pass_rate_last_fifth'])} "
            f"| {fmt(r['rewriter_answer_only_share_first_fifth'])} → {fmt(r['rewriter_answer_only_share_last_fifth'])} "
            f"| {fmt(r['rewrite_acceptance_rate'], 3)} | {fmt(r['rewrite_accepted_answer_only_share'], 3)} "
            f"| {fmt(r['rewrite_instruction_echo_share'], 3)} "
            f"| {fmt(r['rewrite_accepted_length_ratio'])} / {fmt(r['rewrite_target_length_ratio'])} "
            f"| {fmt(r['rewrite_qa_nll_shift'], 3)} "
            f"| {fmt(r['rewriter_qa_nll_vs_expert_first_fifth'], 3)} → "
            f"{fmt(r['rewriter_qa_nll_vs_expert_last_fifth'], 3)} "
            f"| {fmt(r['rewrite_embedding_spread'], 3)} / {fmt(r['rewrite_embedding_spread_original'], 3)} "
            f"| {fmt(minutes[0], 1)} | {fmt(minutes[1], 1)} "
            f"| {fmt(peak)} | {fmt(r.get('keeps_reasoning'))} | {fmt(r.get('aligns'))} |")
    return "\n".join(lines) + "\n"




def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rlrewrite.report rewriter",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="", help="experiment names to include")
    parser.add_argument("--out", default="reports/rewriter_runs.md")
    parser.add_argument("--show-json", help="a saved `dvc exp show --json` instead of running it")
    parser.add_argument("--doc", help="also put the table between this docs file's markers (docs/experiments.md)")
    args = parser.parse_args(argv)
    rows = [summarise(r) for r in experiments(args.prefix, args.show_json)]
    if not rows:
        sys.exit(f"report rewriter: no experiment named {args.prefix}*")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(rows))
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    if args.doc:
        fill_markers(Path(args.doc), "rewriter-runs", markdown(rows))
    print(out.read_text())

