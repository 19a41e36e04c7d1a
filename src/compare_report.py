"""Compare rewrite methods across training seeds: reports/comparison.{md,json,png}.

    python src/compare_report.py [--prefix grid-] [--match REGEX] [--readme README.md]

Reads every DVC experiment (`dvc exp show --json --all-commits`) whose name starts with
`--prefix`, and from each finished one its method (`rewrite.method`), training seed (`seed`),
`metrics/rewrite.json` and the per-item scores `evaluate` wrote (`data/eval/items.json`, read
at the experiment's commit from DVC's cache). Each finished experiment is also written to
`--records` (reports/runs/<name>.json, committed), and the records there are read back, so a
grid can be run over several sessions or machines: experiments that are gone from this checkout
still count (rlrewrite/run_records.py).

- Per method: downstream gain and forgetting (item-weighted over all general items, and per
  benchmark) with 95% intervals from a bootstrap over seeds and items (items resampled within
  each benchmark); acceptance, π0 NLL shift and diversity with t-intervals over seeds.
- Each method against `original` (or `--reference METHOD`): the paired difference on the same
  items and seeds (its gain minus the reference's; its forgetting minus the reference's) with a
  paired bootstrap interval.
- Experiments that are running, queued, failed or lack per-item results are listed, never
  dropped silently; experiments with another data seed than the rest cannot be paired and stop
  the report.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from rlrewrite.device import hardware
from rlrewrite.evaluation.harness import family
from rlrewrite.evaluation.intervals import bootstrap
from rlrewrite.experiments import experiments, read_at
from rlrewrite.markers import fill_markers
from rlrewrite.run_records import RecordError
from rlrewrite.run_records import load as load_records
from rlrewrite.run_records import save as save_record

ITEMS = "data/eval/items.json"
REFERENCE = "original"
MIN_SEEDS = 3  # fewer seeds than this: a difference is reported, never called
METHOD_ORDER = ("original", "prompt", "self", "rl", "dft")
SCALARS = {  # metrics/rewrite.json key -> report label
    "acceptance_rate": "acceptance",
    "qa_nll_shift": "π0 NLL shift",
    "distinct_2": "distinct-2",
    "self_bleu": "self-BLEU",
    "embedding_spread": "embedding spread",
}


class ReportError(ValueError):
    pass


def method_label(params: dict) -> str | None:
    """`rewrite.method`, or `dft` for expert targets under the DFT loss (`sft.loss: dft`)."""
    method = (params.get("rewrite") or {}).get("method")
    if (params.get("sft") or {}).get("loss") == "dft":
        return "dft" if method == "original" else f"{method}+dft"
    return method


def load_runs(rows: list[dict], read=read_at) -> tuple[list[dict], list[dict]]:
    """(finished runs with items, everything else with the reason). An experiment's machine is
    the `hardware` its SFT stage recorded; experiments older than that field get this machine's,
    which is right in the checkout whose queue ran them."""
    runs, left_out = [], []
    for row in rows:
        params = row["params"]
        sft = row["metrics"].get("metrics/sft.json", {})
        entry = {"name": row["name"], "method": method_label(params), "seed": params.get("seed"),
                 "data_seed": (params.get("data") or {}).get("seed"), "rev": row["rev"],
                 "precision": sft.get("precision"), "machine": sft.get("hardware") or hardware()}
        if row["state"] != "done" or row["rev"] is None:
            left_out.append({**entry, "reason": row["state"]})
            continue
        text = read(row["rev"], ITEMS)
        if text is None:
            left_out.append({**entry, "reason": f"no {ITEMS} at its commit (made before it existed, or not in this DVC cache)"})
            continue
        entry["items"] = json.loads(text)
        entry["rewrite"] = row["metrics"].get("metrics/rewrite.json", {})
        runs.append(entry)
    revs = defaultdict(list)
    for run in runs:
        revs[run["name"]].append(run["rev"])
    twice = {name: r for name, r in revs.items() if len(r) > 1}
    if twice:
        raise ReportError("experiment names at more than one commit: " + "; ".join(
            f"{n} ({', '.join(r)})" for n, r in twice.items()) + "; remove all but one "
            "(`dvc exp remove REV`)")
    same_items(runs)
    return runs, left_out


def source(run: dict) -> str:
    return run.get("record") or f"experiment {run['name']}"


def same_items(runs: list[dict]) -> None:
    """One data seed, and the same tasks and item ids in every run: what pairing needs."""
    if not runs:
        return
    first = runs[0]
    shape = {t: v["ids"] for t, v in first["items"]["tasks"].items()}
    for run in runs[1:]:
        if run["data_seed"] != first["data_seed"]:
            raise ReportError(f"{source(run)} has data seed {run['data_seed']}, {source(first)} "
                              f"{first['data_seed']}: items are paired only within one data "
                              f"seed; select one with --prefix/--match")
        other = {t: v["ids"] for t, v in run["items"]["tasks"].items()}
        if other != shape:
            differ = sorted(set(shape) ^ set(other)) or [t for t in shape if shape[t] != other[t]]
            raise ReportError(f"{source(run)} was evaluated on other items than {source(first)} "
                              f"(tasks {', '.join(differ)}): another task set or evaluation "
                              f"setting; select comparable runs with --prefix/--match")


def with_records(live: list[dict], records: list[dict], prefix: str = "", match: str = "",
                 left_out: list[dict] | None = None) -> list[dict]:
    """The live experiments, plus every record (of a name that `prefix`/`match` select) that no
    finished live experiment replaces; a left-out live experiment whose record stands in for it
    says so."""
    names = {r["name"] for r in live}
    kept = [r for r in records if r["name"] not in names and r["name"].startswith(prefix)
            and (not match or re.search(match, r["name"]))]
    recorded = {r["name"]: r for r in kept}
    for entry in left_out or []:
        if entry["name"] in recorded:
            entry["reason"] += (f"; its record ({recorded[entry['name']]['record']}, commit "
                                f"{str(recorded[entry['name']]['rev'])[:7]}) is in the tables")
    runs = live + kept
    same_items(runs)
    return runs


def item_matrix(runs: list[dict], tasks: list[str], which: str) -> np.ndarray:
    """(seeds, items) of per-item scores, items of `tasks` concatenated in a fixed order."""
    rows = []
    for run in runs:
        row = []
        for task in tasks:
            if task not in run["items"]["tasks"]:
                raise ReportError(f"experiment {run['name']}: no items for task {task}")
            row.extend(run["items"]["tasks"][task][which])
        rows.append(row)
    return np.asarray(rows, dtype=float)


def task_slices(run: dict, tasks: list[str]) -> list[slice]:
    out, start = [], 0
    for task in tasks:
        n = len(run["items"]["tasks"][task]["ids"])
        out.append(slice(start, start + n))
        start += n
    return out


def t_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), None, None
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None, None
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def by_family(diff: np.ndarray, general: list[str], groups: list[slice], resamples: int,
              rng) -> dict:
    """Item-weighted forgetting of each benchmark family (standard, quiz, ...)."""
    out = {}
    for name in sorted({family(t) for t in general}):
        picked = [g for t, g in zip(general, groups) if family(t) == name]
        columns = np.concatenate([np.arange(g.start, g.stop) for g in picked])
        sub, start = [], 0
        for g in picked:
            sub.append(slice(start, start + g.stop - g.start))
            start += g.stop - g.start
        out[name] = bootstrap(diff[:, columns], sub, resamples, rng)
    return out


def intervals(gain: np.ndarray, forget: np.ndarray, general: list[str], groups: list[slice],
              resamples: int, rng) -> dict:
    """Gain and forgetting (overall, per family, per task) of (seeds, items) matrices."""
    return {"gain": bootstrap(gain, [slice(0, gain.shape[1])], resamples, rng),
            "forgetting": bootstrap(forget, groups, resamples, rng) if general else None,
            "forgetting_by_family": by_family(forget, general, groups, resamples, rng),
            "forgetting_by_task": {t: bootstrap(forget[:, g], [slice(0, g.stop - g.start)],
                                                resamples, rng)
                                   for t, g in zip(general, groups)}}


def summarise(runs: list[dict], resamples: int, seed: int, reference: str = REFERENCE) -> dict:
    rng = np.random.default_rng(seed)
    first = runs[0]["items"]
    downstream = first["downstream_task"]
    general = [t for t in first["tasks"] if t != downstream]
    by_method = defaultdict(list)
    for run in runs:
        by_method[run["method"]].append(run)
    methods = sorted(by_method, key=lambda m: (METHOD_ORDER + (m,)).index(m))
    groups = task_slices(runs[0], general)
    out = {"downstream_task": downstream, "general_tasks": general,
           "families": sorted({family(t) for t in general}), "methods": {},
           "reference": reference, "paired": {}, "runs": []}
    for method in methods:
        mruns = sorted(by_method[method], key=lambda r: r["seed"])
        gain = item_matrix(mruns, [downstream], "tuned") - item_matrix(mruns, [downstream], "base")
        forget = item_matrix(mruns, general, "base") - item_matrix(mruns, general, "tuned")
        entry = {"seeds": [r["seed"] for r in mruns],
                 **intervals(gain, forget, general, groups, resamples, rng)}
        for key in SCALARS:
            entry[key] = t_interval([r["rewrite"].get(key) for r in mruns])
        out["methods"][method] = entry
        forget_means = forget.mean(1) if general else np.zeros(len(mruns))
        for run, g, f in zip(mruns, gain.mean(1), forget_means):
            out["runs"].append({"name": run["name"], "method": method, "seed": run["seed"],
                                "gain": round(float(g), 4), "forgetting": round(float(f), 4),
                                "machine": run.get("machine"), "precision": run.get("precision")})
    if reference in by_method:
        ref = {r["seed"]: r for r in by_method[reference]}
        for method in methods:
            if method == reference:
                continue
            pairs = [(ref[r["seed"]], r) for r in sorted(by_method[method], key=lambda r: r["seed"])
                     if r["seed"] in ref]
            if not pairs:
                out["paired"][method] = {"seeds": []}
                continue
            refs, others = [p[0] for p in pairs], [p[1] for p in pairs]
            d_gain = item_matrix(others, [downstream], "tuned") - item_matrix(refs, [downstream], "tuned")
            d_forget = item_matrix(refs, general, "tuned") - item_matrix(others, general, "tuned")
            out["paired"][method] = {
                "seeds": [r["seed"] for r in others],
                "across_machines": [
                    {"seed": o["seed"], reference: [r.get("machine"), r.get("precision")],
                     method: [o.get("machine"), o.get("precision")]}
                    for r, o in pairs
                    if (r.get("machine"), r.get("precision")) != (o.get("machine"), o.get("precision"))],
                **intervals(d_gain, d_forget, general, groups, resamples, rng)}
    return out


def fmt(interval, digits: int = 3, signed: bool = False) -> str:
    if interval is None:
        return "–"
    mean, lo, hi = interval
    if mean != mean:  # nan
        return "–"
    sign = "+" if signed else ""
    text = f"{mean:{sign}.{digits}f}"
    if lo is None:
        return f"{text} (one seed)"
    mark = " *" if signed and (lo > 0 or hi < 0) else ""
    return f"{text} [{lo:{sign}.{digits}f}, {hi:{sign}.{digits}f}]{mark}"


def _direction(interval, more: str, less: str, what: str) -> str:
    mean, lo, hi = interval
    if lo > 0:
        return more
    if hi < 0:
        return less
    return f"no resolved difference in {what}"


def verdicts(summary: dict) -> list[str]:
    """The paired comparisons in words, generated (README's results read from these). A
    difference counts only with MIN_SEEDS or more seeds: with fewer, a bootstrap over seeds
    underestimates run-to-run variation (one seed's item interval misses it entirely)."""
    lines, reference = [], summary["reference"]
    for method, p in summary["paired"].items():
        seeds = p.get("seeds", [])
        if len(seeds) < MIN_SEEDS:
            shared = {0: "no seed", 1: "one seed"}.get(len(seeds), f"{len(seeds)} seeds")
            measured = (f" (Δ gain {fmt(p['gain'], signed=True)}, Δ forgetting "
                        f"{fmt(p['forgetting'], signed=True)})" if seeds else "")
            lines.append(f"- `{method}` against `{reference}`: {shared} shared, fewer than "
                         f"{MIN_SEEDS}: not yet a result{measured}.")
            continue
        gain = _direction(p["gain"], "gains more", "gains less", "gain")
        forget = _direction(p["forgetting"], "forgets more", "forgets less", "forgetting")
        lines.append(f"- `{method}` against `{reference}` (seeds {','.join(map(str, p['seeds']))}):"
                     f" {gain} (Δ {fmt(p['gain'], signed=True)}), {forget} "
                     f"(Δ {fmt(p['forgetting'], signed=True)}).")
    return lines


def markdown(summary: dict, left_out: list[dict], resamples: int) -> str:
    methods = summary["methods"]
    reference = summary["reference"]
    families = summary["families"]
    said = verdicts(summary)
    lines = (["In words (generated from the paired intervals below):", "", *said, ""]
             if said else []) + ["Per method, mean over training seeds with a 95% interval. Gain and forgetting "
             "(accuracy points as fractions, item-weighted over "
             f"{len(summary['general_tasks'])} general benchmarks): bootstrap over seeds and items "
             f"({resamples} resamples); the rewrite columns: t-interval over seeds.", "",
             "| method | seeds | downstream gain | forgetting | "
             + " | ".join(f"forgetting: {f}" for f in families)
             + (" | " if families else "") + " | ".join(SCALARS.values()) + " |",
             "|---|---|---|---|" + "---|" * (len(families) + len(SCALARS))]
    for method, e in methods.items():
        lines.append(f"| {method} | {','.join(map(str, e['seeds']))} | {fmt(e['gain'])} "
                     f"| {fmt(e['forgetting'])} | "
                     + "".join(f"{fmt(e['forgetting_by_family'][f])} | " for f in families)
                     + " | ".join(fmt(e[k]) for k in SCALARS) + " |")
    lines += ["", "Forgetting per benchmark (base − tuned accuracy):", "",
              "| method | " + " | ".join(summary["general_tasks"]) + " |",
              "|---|" + "---|" * len(summary["general_tasks"])]
    for method, e in methods.items():
        lines.append(f"| {method} | " + " | ".join(
            fmt(e["forgetting_by_task"][t]) for t in summary["general_tasks"]) + " |")
    if summary["paired"]:
        lines += ["", f"Against `{reference}`, paired on the same items and seeds (method minus "
                  f"{reference}; * marks an interval that excludes 0; less forgetting is "
                  "negative):", "",
                  "| method | seeds | Δ gain | Δ forgetting | "
                  + "".join(f"Δ {f} | " for f in families)
                  + " | ".join(f"Δ {t}" for t in summary["general_tasks"]) + " |",
                  "|---|---|---|---|" + "---|" * (len(families) + len(summary["general_tasks"]))]
        for method, p in summary["paired"].items():
            if not p["seeds"]:
                lines.append(f"| {method} | no seed shared with {reference} |" + " |" * (
                    2 + len(families) + len(summary["general_tasks"])))
                continue
            lines.append(f"| {method} | {','.join(map(str, p['seeds']))} "
                         f"| {fmt(p['gain'], signed=True)} | {fmt(p['forgetting'], signed=True)} | "
                         + "".join(f"{fmt(p['forgetting_by_family'][f], signed=True)} | "
                                   for f in families)
                         + " | ".join(fmt(p["forgetting_by_task"][t], signed=True)
                                      for t in summary["general_tasks"]) + " |")
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (method, e) in enumerate(summary["methods"].items()):
        color = f"C{i}"
        runs = [r for r in summary["runs"] if r["method"] == method]
        ax.scatter([r["forgetting"] for r in runs], [r["gain"] for r in runs], color=color,
                   alpha=0.35, s=18)
        (gx, glo, ghi), (fx, flo, fhi) = e["gain"], e["forgetting"] or (0.0, 0.0, 0.0)
        ax.errorbar(fx, gx, xerr=[[fx - flo], [fhi - fx]], yerr=[[gx - glo], [ghi - gx]],
                    fmt="o", color=color, capsize=3, label=f"{method} (n={len(e['seeds'])})")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_xlabel("forgetting (base − tuned accuracy, general benchmarks)")
    ax.set_ylabel(f"downstream gain ({summary['downstream_task']})")
    ax.set_title("Gain versus forgetting: mean and 95% interval over seeds and items")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="", help="experiment names to include")
    parser.add_argument("--match", default="", help="... and only those matching this regex")
    parser.add_argument("--out", default="reports/comparison", help="path without suffix")
    parser.add_argument("--show-json", help="a saved `dvc exp show --json` instead of running it")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed")
    parser.add_argument("--readme", help="also put the tables between this file's markers")
    parser.add_argument("--reference", default=REFERENCE,
                        help="the method every other one is paired against")
    parser.add_argument("--records", default="reports/runs",
                        help="folder of run records: finished experiments are written there and "
                             "every record is read ('' for neither)")
    args = parser.parse_args()
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
        if args.reference not in {r["method"] for r in runs}:
            raise ReportError(f"--reference {args.reference}: no finished experiment or record "
                              f"of that method (methods: "
                              f"{', '.join(sorted({r['method'] for r in runs}))})")
        summary = summarise(runs, args.resamples, args.seed, args.reference)
        for run in live if records is not None else []:
            save_record(run, records)
    except (ReportError, RecordError, RuntimeError) as exc:
        sys.exit(f"compare_report: {exc}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(summary, left_out, args.resamples)
    out.with_suffix(".md").write_text("# Methods compared\n\n" + text)
    out.with_suffix(".json").write_text(json.dumps({**summary, "left_out": left_out}, indent=1) + "\n")
    Path(f"{out}_points.json").write_text(json.dumps(summary["runs"], indent=1) + "\n")
    figure(summary, out.with_suffix(".png"))
    if args.readme:
        fill_markers(Path(args.readme), "comparison", text + f"\n![gain versus forgetting]({out}.png)\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
