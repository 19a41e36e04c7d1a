"""Benchmark: every stage's wall time, peak RSS and throughput, against this machine's measured
matmul peak; the timing table in docs/performance.md.

    python perf/matmul_peak.py --out reports/machine_peak.json   # once per machine
    python perf/dag_timing.py --run --doc docs/performance.md           # dvc repro --force, timed
    python perf/dag_timing.py                                    # table of metrics/*.json
    python perf/dag_timing.py --exp rl-s0                        # ... of an experiment's

Each stage writes `time_s`, `peak_rss_gib`, `device`, `precision` and `engine` into its metrics
file; this script only reads them. Training stages report achieved FLOP/s as 6 x parameters x
tokens / training time, generation stages tokens/s and 2 x parameters x tokens/s; both as a share
of the measured matmul peak for the stage's precision. Writes reports/dag_timing.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from rlrewrite.experiments import experiments, read_at
from rlrewrite.markers import fill_markers

STAGES = {  # dvc stage -> its metrics file
    "prepare": "metrics/prepare.json",
    "rollout-and-train-rewriter": "metrics/rewriter.json",
    "rewrite": "metrics/rewrite.json",
    "sft": "metrics/sft.json",
    "evaluate-base": "metrics/eval_base.json",
    "evaluate": "metrics/eval.json",
}


def throughput(stage: str, metrics: dict, parameters: int, peak: dict) -> tuple[str, float | None]:
    """(what the stage achieved, in words; its share of the matmul peak for its precision)."""
    ceiling = peak.get(f"{metrics.get('precision', 'fp32')}_gflops")
    if stage == "sft" and metrics.get("train_seconds"):
        gflops = 6 * parameters * metrics["tokens_seen"] / metrics["train_seconds"] / 1e9
        words = f"train {gflops:.0f} GFLOP/s ({metrics['tokens_seen'] / metrics['train_seconds']:.0f} tok/s)"
    elif stage == "rollout-and-train-rewriter" and metrics.get("train_s"):
        gflops = 6 * parameters * metrics["train_tokens"] / metrics["train_s"] / 1e9
        words = (f"6PT/t {gflops:.0f} GFLOP/s; {metrics['train_tokens'] / metrics['train_s']:.0f} "
                 f"tok/s trained, {metrics['generated_tokens']} generated")
    elif stage == "rewrite" and metrics.get("generation_tokens_per_second"):
        rate = metrics["generation_tokens_per_second"]
        gflops = 2 * parameters * rate / 1e9
        words = f"generate {rate:.0f} tok/s ({gflops:.0f} GFLOP/s)"
    else:
        return "", None
    return words, (gflops / ceiling if ceiling else None)


def table(metrics_dir: Path, peak: dict) -> list[dict]:
    prepared = metrics_dir / "prepare.json"
    if not prepared.exists():
        raise SystemExit(f"{prepared}: missing (it holds the model's parameter count); "
                         "run `dvc repro prepare`")
    parameters = json.loads(prepared.read_text())["model_parameters"]
    rows = []
    for stage, path in STAGES.items():
        file = metrics_dir / Path(path).name
        if not file.exists():
            continue
        metrics = json.loads(file.read_text())
        words, share = throughput(stage, metrics, parameters, peak)
        rows.append({"stage": stage, "engine": metrics.get("engine", ""),
                     "precision": metrics.get("precision", ""), "time_s": metrics["time_s"],
                     "peak_rss_gib": metrics["peak_rss_gib"], "throughput": words,
                     "share_of_peak": None if share is None else round(share, 3)})
    return rows


def experiment_metrics(name: str, folder: Path, show_json: str | None = None) -> Path:
    """The stage metrics files of finished experiment `name` (git-tracked at its commit), into
    `folder`."""
    revs = [r["rev"] for r in experiments(match=f"^{re.escape(name)}$", show_json=show_json)
            if r["name"] == name and r["state"] == "done" and r["rev"]]
    if not revs:
        raise SystemExit(f"--exp {name}: no finished experiment of that name (`dvc exp show`)")
    for path in STAGES.values():
        text = read_at(revs[0], path)
        if text is not None:
            (folder / Path(path).name).write_text(text)
    if not (folder / "prepare.json").exists():
        raise SystemExit(f"--exp {name}: its commit {revs[0][:7]} has no metrics/prepare.json")
    return folder


def markdown(rows: list[dict], peak: dict, total_s: float | None) -> str:
    lines = ["| stage | engine | precision | time | peak RSS | throughput | share of peak |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        share = "" if r["share_of_peak"] is None else f"{100 * r['share_of_peak']:.1f}%"
        lines.append(f"| {r['stage']} | {r['engine']} | {r['precision']} | "
                     f"{r['time_s'] / 60:.1f} min | {r['peak_rss_gib']:.2f} GiB | "
                     f"{r['throughput']} | {share} |")
    stages_s = sum(r["time_s"] for r in rows)
    total = f"{total_s / 60:.1f} min wall" if total_s else "wall not timed"
    lines.append(f"| **all** | | | {stages_s / 60:.1f} min in stages; {total} | "
                 f"{max(r['peak_rss_gib'] for r in rows):.2f} GiB | | |")
    lines.append("")
    lines.append(f"Machine: {peak.get('cpu', '?')}, {peak.get('threads', '?')} threads; matmul "
                 f"peak {peak.get('bf16_gflops', '?')} GFLOP/s bf16, {peak.get('fp32_gflops', '?')}"
                 f" fp32 (`perf/matmul_peak.py`).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="time `dvc repro --force` first")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--exp", help="read the metrics of this DVC experiment instead")
    parser.add_argument("--show-json", help="with --exp: a saved `dvc exp show --json`")
    parser.add_argument("--wall-s", type=float,
                        help="the run's wall time, measured outside this script (e.g. a queued "
                             "experiment's, from its queue start to its commit)")
    parser.add_argument("--peak", default="reports/machine_peak.json")
    parser.add_argument("--out", default="reports/dag_timing")
    parser.add_argument("--doc", help="fill this docs file's dag-timing markers (docs/performance.md)")
    args = parser.parse_args()
    total_s = args.wall_s
    if args.run:
        started = time.perf_counter()
        subprocess.run(["dvc", "repro", "--force"], check=True)
        total_s = time.perf_counter() - started
    peak_file = Path(args.peak)
    if not peak_file.exists():
        raise SystemExit(f"{peak_file}: missing; run `python perf/matmul_peak.py --out "
                         f"{peak_file}` on this machine first")
    peak = json.loads(peak_file.read_text())
    metrics = Path(args.metrics)
    if args.exp:
        metrics = experiment_metrics(args.exp, Path(tempfile.mkdtemp(prefix="dag-timing-")),
                                     args.show_json)
    rows = table(metrics, peak)
    text = markdown(rows, peak, total_s)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({"machine": peak, "total_s": total_s,
                                                    "stages": rows}, indent=1) + "\n")
    Path(f"{args.out}.md").write_text(text)
    if args.doc:
        fill_markers(Path(args.doc), "dag-timing", text)
    print(text)


if __name__ == "__main__":
    main()
