"""Compare rewrite methods across training seeds: reports/comparison.{md,json,png}.

    python -m rlrewrite.report comparison [--prefix grid-] [--match REGEX] [--group-by KEY]

Reads every DVC experiment (`dvc exp show --json --all-commits`) whose name starts with
`--prefix`, and from each finished one its method (`rewrite.method`), training seed (`seed`),
`metrics/rewrite.json` and the per-item scores `evaluate` wrote (`data/eval/items.json`, read
at the experiment's commit from DVC's cache). Each finished experiment is also written to
`--records` (reports/runs/<name>.json, committed), and the records there are read back, so a
grid can be run over several sessions or machines: experiments that are gone from this checkout
still count (rlrewrite/run_records.py).

- Per method: downstream gain and forgetting (overall, per family, per benchmark; in accuracy
  and, where the runs kept every option's log-likelihood, the gold option's probability and
  log-probability), with 95% Student-t intervals over training seeds (rlrewrite/report/statistics.py);
  an item bootstrap of the seed-averaged values is a secondary column.
- Each method against `original` (or `--reference`): the paired per-seed differences on the same
  items, their t-interval, and words only where >= 3 seeds resolve it.
- Runs under different configurations (config_digest: the params the method reads) are never
  pooled; `--group-by KEY` splits rows by a swept key.
- Experiments that are running, queued, failed or lack per-item results are listed, never
  dropped silently; experiments with another data seed than the rest cannot be paired and stop
  the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from rlrewrite.experiments import experiments
from rlrewrite.report.runs import ITEMS, ReportError, group_labels, load_runs, with_records
from rlrewrite.report.statistics import (
    EVAL_SCALARS,
    MIN_SEEDS,
    POOL_KEYS,
    REFERENCE,
    REWRITE_SCALARS,
    ComparisonError,
    fmt,
    summarise,
    verdicts,
)
from rlrewrite.run_records import RecordError
from rlrewrite.run_records import load as load_records
from rlrewrite.run_records import save as save_record


def _forgetting_columns(summary: dict) -> list[tuple[str, str, str | None]]:
    """(header, key, family) of the forgetting columns: the primary family first, in accuracy
    and log-probability, then the other families in accuracy, then all items."""
    families = summary["families"]
    primary = [summary["primary_family"]] if summary["primary_family"] in families else []
    continuous = "prob" in summary["measures"]
    columns = []
    for name in primary + [f for f in families if f not in primary]:
        columns.append((f"{name} (acc)", "forgetting", name))
        if continuous and name in primary:
            columns += [(f"{name} (prob)", "forgetting_prob", name),
                        (f"{name} (logp, nats)", "forgetting_logp", name)]
    columns.append(("all items (acc)", "forgetting", None))
    if continuous:
        columns.append(("all items (prob)", "forgetting_prob", None))
    return columns


def _cell(entry: dict, key: str, name: str | None, signed: bool, prefix: str = "") -> str:
    if prefix + key not in entry:
        return "–"
    value = entry[f"{prefix}{key}_by_family"].get(name) if name else entry[prefix + key]
    return fmt(value, signed=signed, resolvable=len(entry.get("seeds", [])) >= MIN_SEEDS)


def pool_table(runs: list[dict]) -> list[str]:
    """The `select` runs' candidate pools, each once: what LOW, HIGH and RANDOM pick from it
    (π0 NLL per token of the chosen targets, their token total) and the gap between HIGH's
    and LOW's NLL."""
    pools: dict[tuple, list[str]] = {}
    for run in runs:
        if run.get("pool_low_high_gap") is not None:
            pools.setdefault(tuple(run.get(k) for k in POOL_KEYS), []).append(run["name"])
    if not pools:
        return []
    lines = ["", "The selection pools, over the questions with a passing candidate (the others "
             "keep the expert solution under every rule; a question with one eligible "
             "candidate gets it under every rule):", "",
             "| runs | candidates | pass rate | questions covered | NLL low / random / high "
             "| tokens low / random / high | NLL gap (high − low) |", "|---|---|---|---|---|---|---|"]
    for values, names in pools.items():
        pool = dict(zip(POOL_KEYS, values))
        lines.append(
            f"| {', '.join(sorted(names))} | {pool['pool_candidates']} | "
            f"{pool['pool_pass_rate']} | {pool['pool_questions_covered']} | "
            f"{pool['pool_low_nll']} / {pool['pool_random_nll']} / {pool['pool_high_nll']} | "
            f"{pool['pool_low_tokens']} / {pool['pool_random_tokens']} / "
            f"{pool['pool_high_tokens']} | {pool['pool_low_high_gap']} |")
    return lines


def markdown(summary: dict, left_out: list[dict], resamples: int) -> str:
    methods, reference = summary["methods"], summary["reference"]
    columns = _forgetting_columns(summary)
    said = verdicts(summary)
    lines = (["In words (generated from the seed-level intervals below):", "", *said, ""]
             if said else [])
    lines += ["Gain: downstream accuracy, tuned − base. Forgetting: base − tuned, in accuracy "
              "(acc, fractions) and, where the runs kept every option's log-likelihood, in the "
              "gold option's probability among the options (prob) and its logarithm (logp, "
              "nats), item-weighted. Intervals: 95% Student-t over training seeds (the "
              "unit); `items` columns: bootstrap over items of the seed-averaged differences "
              f"({resamples} resamples), how far other benchmark items could move them. "
              f"The primary forgetting family is `{summary['primary_family']}`.", ""]
    if summary["paired"]:
        head = "| method | seeds | Δ gain | " + " | ".join(f"Δ {c[0]}" for c in columns) + " |"
        rule = "|---|---|---|" + "---|" * len(columns)
        lines += [f"Against `{reference}`, paired by training seed (method minus {reference}; "
                  "* marks a seed-level interval that excludes 0; less forgetting is negative):",
                  "", head, rule]
        for method, p in summary["paired"].items():
            if not p["seeds"]:
                lines.append(f"| {method} | no seed shared with {reference} |"
                             + " |" * (1 + len(columns)))
                continue
            lines.append(f"| {method} | {','.join(map(str, p['seeds']))} | "
                         f"{fmt(p['gain'], signed=True, resolvable=len(p['seeds']) >= MIN_SEEDS)} | "
                         + " | ".join(_cell(p, k, f, True) for _, k, f in columns) + " |")
        lines += ["", "The same differences, item-level intervals (secondary):", "", head, rule]
        for method, p in summary["paired"].items():
            if p["seeds"]:
                lines.append(f"| {method} | {','.join(map(str, p['seeds']))} | "
                             f"{fmt(p['items_gain'], signed=True)} | "
                             + " | ".join(_cell(p, k, f, True, "items_") for _, k, f in columns)
                             + " |")
    scalars = {**REWRITE_SCALARS, **EVAL_SCALARS}
    lines += ["", "Per method, mean over training seeds with a 95% t-interval over seeds:", "",
              "| method | seeds | gain | " + " | ".join(f"forgetting {c[0]}" for c in columns)
              + " | " + " | ".join(scalars.values()) + " |",
              "|---|---|---|" + "---|" * (len(columns) + len(scalars))]
    for method, e in methods.items():
        lines.append(f"| {method} | {','.join(map(str, e['seeds']))} | {fmt(e['gain'])} | "
                     + " | ".join(_cell(e, k, f, False) for _, k, f in columns) + " | "
                     + " | ".join(fmt(e.get(k)) for k in scalars) + " |")
    for measure, key, unit in (("acc", "forgetting", "accuracy"),
                               ("prob", "forgetting_prob", "gold probability among the options"),
                               ("logp", "forgetting_logp", "gold log-probability, nats")):
        if measure not in summary["measures"]:
            continue
        lines += ["", f"Forgetting per benchmark ({unit}; base − tuned; t-interval over seeds):",
                  "", "| method | " + " | ".join(summary["general_tasks"]) + " |",
                  "|---|" + "---|" * len(summary["general_tasks"])]
        for method, e in methods.items():
            lines.append(f"| {method} | " + " | ".join(
                fmt(e.get(f"{key}_by_task", {}).get(t)) for t in summary["general_tasks"]) + " |")
    lines += ["", "Power: per-seed spread of the paired forgetting differences and the seeds a "
              "1-point accuracy difference needs (80% power, two-sided 95%; prob and logp: 1 "
              "accuracy point converted by the runs' slope of that measure on accuracy):", "",
              "| measure | scope | SD per seed | 1 point is | seeds for 1 point | spread from |",
              "|---|---|---|---|---|---|"]
    for measure, scopes in summary["power"].items():
        for scope, p in scopes.items():
            lines.append(f"| {measure} | {scope} | {p['sd_per_seed']} | {p['one_point']} | "
                         f"{p['seeds_for_one_point'] or '–'} | {p['source']} ({p['dof']} dof) |")
    primary = summary["primary_family"]
    lines += ["", "Every run (reports/runs/<name>.json holds its items and these fields; "
              "<name>.samples.jsonl 20 of its targets):", "",
              f"| run | config | gain | forgetting {primary} (acc) | (prob) | (logp) | SFT loss first → last "
              "| tokens trained | target tokens | gold NLL base → tuned | truncated | no answer "
              "| π0 NLL shift | false equations | instruction echo |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def num(value, digits=3):
        return "–" if value is None else (f"{value:.{digits}f}" if isinstance(value, float)
                                          else str(value))
    for r in summary["runs"]:
        lines.append(
            f"| {r['name']} | {r.get('config') or '–'} | {num(r['gain'])} | "
            f"{num(r.get(f'forgetting/{primary}'))} | {num(r.get(f'forgetting_prob/{primary}'))} | "
            f"{num(r.get(f'forgetting_logp/{primary}'))} | "
            f"{num(r.get('sft_train_loss_first'))} → {num(r.get('sft_train_loss_final'))} | "
            f"{num(r.get('sft_tokens_trained'))} | {num(r.get('target_tokens_mean'), 1)} | "
            f"{num(r.get('gold_nll_base'))} → {num(r.get('gold_nll_tuned'))} | "
            f"{num(r.get('truncated_tuned'))} | {num(r.get('no_answer_tuned'))} | "
            f"{num(r.get('qa_nll_shift'))} | {num(r.get('false_equation_share'))} | "
            f"{num(r.get('instruction_echo_share'))} |")
    lines += pool_table(summary["runs"])
    for method, p in summary["paired"].items():
        for pair in p.get("across_machines", []):
            ref, other = (", ".join(str(v or "?") for v in pair[k]) for k in (reference, method))
            lines += ["", f"Note: `{method}` seed {pair['seed']} pairs runs from different machines "
                      f"or precisions ({reference}: {ref}; {method}: {other}): that pair's "
                      "difference includes the machine's."]
    ran_on = defaultdict(list)
    for run in summary["runs"]:
        ran_on[(run.get("machine") or "this checkout", run.get("precision") or "?")].append(run["name"])
    lines += ["", "Where each experiment ran:", ""]
    lines += [f"- {machine}, {precision}: {', '.join(sorted(names))}"
              for (machine, precision), names in sorted(ran_on.items())]
    if left_out:
        lines += ["", "Not in the tables:", ""]
        lines += [f"- {r['name']} ({r['method']}, seed {r['seed']}): {r['reason']}"
                  for r in left_out]
    return "\n".join(lines) + "\n"


def figure(summary: dict, path: Path) -> None:
    """Gain against primary-family forgetting: each seed, and each method's mean with its
    seed-level intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    primary = summary["primary_family"]
    has_primary = primary in summary["families"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (method, e) in enumerate(summary["methods"].items()):
        color = f"C{i}"
        runs = [r for r in summary["runs"] if r["method"] == method]
        key = f"forgetting/{primary}" if has_primary else "forgetting"
        ax.scatter([r.get(key) or 0.0 for r in runs], [r["gain"] for r in runs], color=color,
                   alpha=0.35, s=18)
        forget = (e["forgetting_by_family"][primary] if has_primary else e["forgetting"]) \
            or (0.0, None, None)
        (gx, glo, ghi), (fx, flo, fhi) = e["gain"], forget
        ax.errorbar(fx, gx, xerr=None if flo is None else [[fx - flo], [fhi - fx]],
                    yerr=None if glo is None else [[gx - glo], [ghi - gx]],
                    fmt="o", color=color, capsize=3, label=f"{method} (n={len(e['seeds'])})")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_xlabel(f"forgetting (base − tuned accuracy, {primary if has_primary else 'all'} items)")
    ax.set_ylabel(f"downstream gain ({summary['downstream_task']})")
    ax.set_title("Gain versus forgetting: seeds and mean ± 95% t-interval over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def dose_response(summary: dict, path: Path) -> None:
    """Forgetting (primary family, accuracy and gold probability) and gain against the targets'
    π0 NLL shift (the paper's mechanism: targets more likely under π0 forget less), every run a
    point, each method's mean a larger marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    primary = summary["primary_family"]
    panels = [(f"forgetting/{primary}", f"forgetting, {primary} (accuracy)"),
              (f"forgetting_prob/{primary}", f"forgetting, {primary} (gold probability)"),
              ("gain", f"gain ({summary['downstream_task']})")]
    panels = [p for p in panels if any(r.get(p[0]) is not None for r in summary["runs"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        for i, method in enumerate(summary["methods"]):
            runs = [r for r in summary["runs"] if r["method"] == method
                    and r.get("qa_nll_shift") is not None and r.get(key) is not None]
            if not runs:
                continue
            xs, ys = [r["qa_nll_shift"] for r in runs], [r[key] for r in runs]
            ax.scatter(xs, ys, color=f"C{i}", alpha=0.4, s=16)
            ax.scatter([sum(xs) / len(xs)], [sum(ys) / len(ys)], color=f"C{i}", s=70,
                       edgecolor="black", label=f"{method} (n={len(runs)})")
        ax.axvline(0, color="0.8", lw=0.8)
        ax.set_xlabel("targets' π0 NLL shift (nats/token; < 0: closer to π0)")
        ax.set_ylabel(label)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Dose-response: forgetting and gain against the targets' π0-likelihood")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rlrewrite.report comparison",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="", help="experiment names to include")
    parser.add_argument("--match", default="", help="... and only those matching this regex")
    parser.add_argument("--out", default="reports/comparison", help="path without suffix")
    parser.add_argument("--show-json", help="a saved `dvc exp show --json` instead of running it")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed")
    parser.add_argument("--reference", default=REFERENCE,
                        help="the method every other one is paired against")
    parser.add_argument("--group-by", default="",
                        help="a params key (e.g. sft.learning_rate): groups are method and its "
                             "value, so a sweep over it gets its own rows")
    parser.add_argument("--records", default="reports/runs",
                        help="folder of run records: finished experiments are written there and "
                             "every record is read ('' for neither)")
    args = parser.parse_args(argv)
    try:
        live, left_out = load_runs(experiments(args.prefix, args.show_json, args.match))
        records = Path(args.records) if args.records else None
        if records is not None and records.exists() and not records.is_dir():
            raise ReportError(f"--records {records}: not a folder")
        runs = (with_records(live, load_records(records), args.prefix, args.match, left_out)
                if records is not None else live)
        if not runs:
            raise ReportError(f"no finished experiment named {args.prefix}* (matching "
                              f"'{args.match}') with {ITEMS}, and no record in {records}"
                              + "".join(f"\n  {r['name']}: {r['reason']}" for r in left_out))
        labels = group_labels(runs, args.group_by)
        if args.reference not in {labels(r) for r in runs}:
            raise ReportError(f"--reference {args.reference}: no group of that name (groups: "
                              f"{', '.join(sorted({labels(r) for r in runs}))})")
        summary = summarise(runs, args.resamples, args.seed, args.reference, group_of=labels)
        for run in live if records is not None else []:
            save_record(run, records)
    except (ReportError, RecordError, ComparisonError, RuntimeError) as exc:
        sys.exit(f"report comparison: {exc}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(summary, left_out, args.resamples)
    out.with_suffix(".md").write_text("# Methods compared\n\n" + text)
    out.with_suffix(".json").write_text(json.dumps({**summary, "left_out": left_out}, indent=1) + "\n")
    Path(f"{out}_points.json").write_text(json.dumps(summary["runs"], indent=1) + "\n")
    figure(summary, out.with_suffix(".png"))
    dose_response(summary, Path(f"{out}_dose.png"))
    print(out.with_suffix(".md").read_text())

