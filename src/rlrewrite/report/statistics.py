"""The study's statistics: rewrite methods compared across training seeds (reports/comparison.*).

Per run, from its per-item scores: the downstream gain (tuned − base) and forgetting (base −
tuned) in two measures, overall, per benchmark family and per task:
- `acc`: 0/1 accuracy, lm-eval's primary metric;
- `prob`: the gold option's probability among the options (softmax of the options'
  log-likelihoods at the gold; LAMBADA: the gold word's probability), in accuracy's units and
  bounded like it: the continuous form of `acc`, computed here from the per-option
  log-likelihoods every run keeps;
- `logp`: its logarithm, in nats (harness.gold_logprob): unbounded, so a few items the tuned
  model grows very sure against (HellaSwag's long endings) can dominate its mean.

The training seed is the unit. Per method, each seed gives one value; against the reference
method, each shared seed gives one paired difference; the primary interval is a Student-t
interval over those values (`gain`, `forgetting`, `forgetting_prob`, `forgetting_logp`, `*_by_family`,
`*_by_task`). The secondary, item-level interval (`items_*`) bootstraps items of the
seed-averaged differences: how much the verdict could move with other benchmark items. Words
("forgets more") are given only where the seed-level interval of at least MIN_SEEDS seeds
excludes 0. The primary forgetting family is `standard` (lm-eval's benchmarks, no chat
template).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from rlrewrite.evaluation.harness import family, gold_logprob
from rlrewrite.evaluation.intervals import bootstrap, seeds_needed, t_interval

REFERENCE = "original"
MIN_SEEDS = 3  # fewer seeds than this: a difference is reported, never called
PRIMARY_FAMILY = "standard"
METHOD_ORDER = ("original", "prompt", "self", "rl", "select", "dft")
MEASURES = {"acc": ("base", "tuned"), "prob": ("base_prob", "tuned_prob"),
            "logp": ("base_logp", "tuned_logp")}
FORGETTING_KEY = {"acc": "forgetting", "prob": "forgetting_prob", "logp": "forgetting_logp"}
POINT = 0.01  # one accuracy point, the difference the power analysis sizes seeds for
REWRITE_SCALARS = {  # metrics/rewrite.json key -> report label
    "acceptance_rate": "acceptance",
    "qa_nll_shift": "π0 NLL shift",
    "distinct_2": "distinct-2",
    "self_bleu": "self-BLEU",
    "embedding_spread": "embedding spread",
}
# the `select` method's candidate pool (metrics/rewrite.json): what each rule would pick from it
POOL_KEYS = ("pool_candidates", "pool_pass_rate", "pool_questions_covered", "pool_low_nll",
             "pool_high_nll", "pool_random_nll", "pool_low_tokens", "pool_high_tokens",
             "pool_random_tokens", "pool_low_high_gap")
EVAL_SCALARS = {  # metrics/eval.json downstream key -> report label
    "truncated_tuned": "truncated",
    "no_answer_tuned": "no answer",
}


class ComparisonError(ValueError):
    pass


def gold_probability(options_ll: list[list[float]], gold: list[int]) -> list[float]:
    """Per item, the gold option's probability among the options: exp of harness.gold_logprob
    (one option: exp(ll))."""
    return [float(np.exp(gold_logprob({"ll": ll, "gold": g}))) for ll, g in zip(options_ll, gold)]


def _scores(task_items: dict, which: str) -> list[float] | None:
    if which in task_items:
        return task_items[which]
    side = which.removesuffix("_prob")
    if which.endswith("_prob") and f"{side}_ll" in task_items and "gold" in task_items:
        return gold_probability(task_items[f"{side}_ll"], task_items["gold"])
    return None


def item_matrix(runs: list[dict], tasks: list[str], which: str) -> np.ndarray:
    """(seeds, items) of per-item scores, items of `tasks` concatenated in a fixed order."""
    rows = []
    for run in runs:
        row = []
        for task in tasks:
            if task not in run["items"]["tasks"]:
                raise ComparisonError(f"experiment {run['name']}: no items for task {task}")
            values = _scores(run["items"]["tasks"][task], which)
            if values is None:
                raise ComparisonError(f"experiment {run['name']}: task {task} has no {which}")
            row.extend(values)
        rows.append(row)
    return np.asarray(rows, dtype=float)


def task_slices(run: dict, tasks: list[str]) -> list[slice]:
    out, start = [], 0
    for task in tasks:
        n = len(run["items"]["tasks"][task]["ids"])
        out.append(slice(start, start + n))
        start += n
    return out


def measures_of(runs: list[dict], general: list[str]) -> dict[str, list[str]]:
    """Per measure, the general tasks it covers: `acc` every one; `prob` and `logp` those whose
    options' log-likelihoods every run kept (not generated tasks, not format-1 records)."""
    with_options = [t for t in general
                    if all("base_ll" in run["items"]["tasks"][t] for run in runs)]
    return {"acc": general, **({"prob": with_options, "logp": with_options} if with_options
                               else {})}


def _family_columns(general: list[str], groups: list[slice]) -> dict[str, tuple]:
    """Per family: its column indices and its tasks' slices within those columns."""
    out = {}
    for name in sorted({family(t) for t in general}):
        picked = [g for t, g in zip(general, groups) if family(t) == name]
        columns = np.concatenate([np.arange(g.start, g.stop) for g in picked])
        sub, start = [], 0
        for g in picked:
            sub.append(slice(start, start + g.stop - g.start))
            start += g.stop - g.start
        out[name] = (columns, sub)
    return out


def _items(diff: np.ndarray, groups: list[slice], resamples: int, rng):
    """Item-level interval of the seed-averaged differences (items resampled within tasks)."""
    return bootstrap(diff.mean(0, keepdims=True), groups, resamples, rng)


def _rounded(values) -> list[float]:
    return [round(float(v), 5) for v in values]


def intervals(gain: np.ndarray, forget: dict[str, np.ndarray], tasks_of: dict[str, list[str]],
              slices_of: dict[str, list[slice]], resamples: int, rng) -> dict:
    """Gain and forgetting (overall, per family, per task; each measure over the tasks it covers)
    of (seeds, items) matrices: seed-level t-intervals, item-level bootstraps beside them, the
    per-seed values."""
    out = {"gain": t_interval(gain.mean(1)),
           "items_gain": _items(gain, [slice(0, gain.shape[1])], resamples, rng),
           "per_seed": {"gain": _rounded(gain.mean(1))}}
    for measure, diff in forget.items():
        key = FORGETTING_KEY[measure]
        general, groups = tasks_of[measure], slices_of[measure]
        families = _family_columns(general, groups)
        if not general:
            out[key] = None
            continue
        out[key] = t_interval(diff.mean(1))
        out[f"items_{key}"] = _items(diff, groups, resamples, rng)
        out["per_seed"][key] = _rounded(diff.mean(1))
        out[f"{key}_by_family"], out[f"items_{key}_by_family"] = {}, {}
        for name, (columns, sub) in families.items():
            out[f"{key}_by_family"][name] = t_interval(diff[:, columns].mean(1))
            out[f"items_{key}_by_family"][name] = _items(diff[:, columns], sub, resamples, rng)
            out["per_seed"][f"{key}/{name}"] = _rounded(diff[:, columns].mean(1))
        out[f"{key}_by_task"] = {t: t_interval(diff[:, g].mean(1)) for t, g in zip(general, groups)}
    return out


def _forgetting(runs: list[dict], tasks_of: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Per measure, (seeds, items) of base − tuned over the tasks it covers."""
    return {m: item_matrix(runs, tasks, MEASURES[m][0]) - item_matrix(runs, tasks, MEASURES[m][1])
            for m, tasks in tasks_of.items()}


def _run_row(run: dict, method: str, gain: float, forget: dict, tasks_of: dict,
             slices_of: dict) -> dict:
    row = {"name": run["name"], "method": method, "seed": run["seed"],
           "config": run.get("config"), "gain": round(float(gain), 4),
           "machine": run.get("machine"), "precision": run.get("precision")}
    for measure, values in forget.items():
        key = FORGETTING_KEY[measure]
        if not tasks_of[measure]:
            continue
        row[key] = round(float(values.mean()), 4)
        for name, (columns, _) in _family_columns(tasks_of[measure], slices_of[measure]).items():
            row[f"{key}/{name}"] = round(float(values[columns].mean()), 4)
    rewrite = run.get("rewrite", {})
    row.update({k: rewrite.get(k) for k in ("acceptance_rate", "qa_nll_shift", "qa_nll_targets",
                                            "target_tokens_mean", "false_equation_share",
                                            "instruction_echo_share")})
    row.update({k: rewrite[k] for k in POOL_KEYS if k in rewrite})  # select runs only
    row.update({f"sft_{k}": run.get("sft", {}).get(k) for k in
                ("train_loss_first", "train_loss_final", "tokens_trained")})
    row.update({k: run.get("eval", {}).get(k) for k in
                ("gold_nll_base", "gold_nll_tuned", "truncated_tuned", "no_answer_tuned")})
    return row


def summarise(runs: list[dict], resamples: int, seed: int, reference: str = REFERENCE,
              group_of=lambda run: run["method"]) -> dict:
    """Per group (by default the method), and each group against `reference`, paired by seed."""
    rng = np.random.default_rng(seed)
    first = runs[0]["items"]
    downstream = first["downstream_task"]
    general = [t for t in first["tasks"] if t != downstream]
    tasks_of = measures_of(runs, general)
    slices_of = {m: task_slices(runs[0], tasks) for m, tasks in tasks_of.items()}
    by_method = defaultdict(list)
    for run in runs:
        by_method[group_of(run)].append(run)
    methods = sorted(by_method, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER
                                               else len(METHOD_ORDER), str(m)))
    out = {"downstream_task": downstream, "general_tasks": general, "measures": list(tasks_of),
           "measure_tasks": tasks_of,
           "families": sorted({family(t) for t in general}), "primary_family": PRIMARY_FAMILY,
           "methods": {}, "reference": reference, "paired": {}, "runs": []}
    for method in methods:
        mruns = sorted(by_method[method], key=lambda r: r["seed"])
        seeds = [r["seed"] for r in mruns]
        if len(set(seeds)) != len(seeds):
            twice = sorted({s for s in seeds if seeds.count(s) > 1})
            raise ComparisonError(
                f"{method}: seed(s) {twice} appear in more than one run ("
                + ", ".join(r["name"] for r in mruns if r["seed"] in twice)
                + "): one run per seed and configuration; select with --match")
        gain = item_matrix(mruns, [downstream], "tuned") - item_matrix(mruns, [downstream], "base")
        forget = _forgetting(mruns, tasks_of)
        entry = {"seeds": [r["seed"] for r in mruns],
                 **intervals(gain, forget, tasks_of, slices_of, resamples, rng)}
        for key in REWRITE_SCALARS:
            entry[key] = t_interval([r.get("rewrite", {}).get(key) for r in mruns])
        for key in EVAL_SCALARS:
            entry[key] = t_interval([r.get("eval", {}).get(key) for r in mruns])
        out["methods"][method] = entry
        for i, run in enumerate(mruns):
            out["runs"].append(_run_row(run, method, gain[i].mean(),
                                        {m: d[i] for m, d in forget.items()}, tasks_of, slices_of))
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
            d_gain = (item_matrix(others, [downstream], "tuned")
                      - item_matrix(refs, [downstream], "tuned"))
            d_forget = {m: item_matrix(refs, tasks, MEASURES[m][1])
                        - item_matrix(others, tasks, MEASURES[m][1]) for m, tasks in tasks_of.items()}
            out["paired"][method] = {
                "seeds": [r["seed"] for r in others],
                "across_machines": [
                    {"seed": o["seed"], reference: [r.get("machine"), r.get("precision")],
                     method: [o.get("machine"), o.get("precision")]}
                    for r, o in pairs
                    if (r.get("machine"), r.get("precision")) != (o.get("machine"), o.get("precision"))],
                **intervals(d_gain, d_forget, tasks_of, slices_of, resamples, rng)}
    out["power"] = power(out)
    return out


def _pooled_sd(samples: list[list[float]]) -> tuple[float | None, int]:
    """Pooled standard deviation of several samples (each about its own mean), and its degrees
    of freedom."""
    dof = sum(len(s) - 1 for s in samples if len(s) > 1)
    if dof < 1:
        return None, 0
    ss = sum(float(np.sum((np.asarray(s) - np.mean(s)) ** 2)) for s in samples if len(s) > 1)
    return float(np.sqrt(ss / dof)), dof


def power(summary: dict) -> dict:
    """Per measure and scope (overall, each family): how per-seed differences spread and how many
    seeds resolve a 1-point difference (80% power, two-sided 95%). The spread is the pooled SD of
    the paired per-seed differences against the reference; with no pairs yet, √2 × the pooled
    SD of each method's own per-seed forgetting (independent seeds). A log-probability
    difference is sized by what 1 accuracy point is in nats: the slope, through the origin, of
    logp forgetting on accuracy forgetting over every run."""
    scopes = [("overall", "")] + [(f, f"/{f}") for f in summary["families"]]
    out = {}
    for measure in summary["measures"]:
        key = FORGETTING_KEY[measure]
        out[measure] = {}
        for scope, suffix in scopes:
            paired = [p["per_seed"][key + suffix] for p in summary["paired"].values()
                      if key + suffix in p.get("per_seed", {})]
            sd, dof = _pooled_sd(paired)
            source = "paired differences"
            if sd is None:
                own, dof = _pooled_sd([e["per_seed"][key + suffix]
                                       for e in summary["methods"].values()
                                       if key + suffix in e.get("per_seed", {})])
                sd, source = (own * np.sqrt(2), "√2 × one method's seed spread") if own else (None, "")
            point = POINT
            if measure != "acc":
                acc = np.array([r.get("forgetting" + suffix) for r in summary["runs"]], float)
                other = np.array([r.get(key + suffix) for r in summary["runs"]], float)
                ok = np.isfinite(acc) & np.isfinite(other)
                point = (float(np.sum(acc[ok] * other[ok]) / np.sum(acc[ok] ** 2) * POINT)
                         if ok.any() and np.sum(acc[ok] ** 2) > 0 else None)
            out[measure][scope] = {
                "sd_per_seed": None if sd is None else round(sd, 5), "dof": dof, "source": source,
                "one_point": None if point is None else round(point, 5),
                "seeds_for_one_point": (seeds_needed(sd, abs(point))
                                        if sd is not None and point else None)}
    return out


def _direction(interval, more: str, less: str, what: str) -> str:
    mean, lo, hi = interval
    if lo is not None and lo > 0:
        return more
    if hi is not None and hi < 0:
        return less
    return f"no resolved difference in {what}"


def fmt(interval, digits: int = 3, signed: bool = False, resolvable: bool = True) -> str:
    """`mean [low, high]`; signed differences get `*` where the interval excludes 0 and the
    interval counts (`resolvable`: MIN_SEEDS or more seeds)."""
    if interval is None:
        return "–"
    mean, lo, hi = interval
    if mean != mean:  # nan
        return "–"
    sign = "+" if signed else ""
    text = f"{mean:{sign}.{digits}f}"
    if lo is None:
        return f"{text} (one seed)"
    mark = " *" if signed and resolvable and (lo > 0 or hi < 0) else ""
    return f"{text} [{lo:{sign}.{digits}f}, {hi:{sign}.{digits}f}]{mark}"


def verdicts(summary: dict) -> list[str]:
    """The paired comparisons in words, read from the seed-level intervals only: gain, then
    forgetting on the primary family (the overall items where it is absent) in accuracy and in
    log-probability. Fewer than MIN_SEEDS shared seeds: reported, not called."""
    lines, reference = [], summary["reference"]
    primary = summary["primary_family"] if summary["primary_family"] in summary["families"] else None
    where = f"{primary}-family " if primary else ""
    for method, p in summary["paired"].items():
        seeds = p.get("seeds", [])
        forget = p["forgetting_by_family"][primary] if primary and seeds else p.get("forgetting")
        if len(seeds) < MIN_SEEDS:
            shared = {0: "no seed", 1: "one seed"}.get(len(seeds), f"{len(seeds)} seeds")
            measured = (f" (Δ gain {fmt(p['gain'], signed=True)}, Δ {where}forgetting "
                        f"{fmt(forget, signed=True)})" if seeds else "")
            lines.append(f"- `{method}` against `{reference}`: {shared} shared, fewer than "
                         f"{MIN_SEEDS}: not yet a result{measured}.")
            continue
        gain = _direction(p["gain"], "gains more", "gains less", "gain")
        on = f" on the {primary} family" if primary else ""
        forgets = _direction(forget, f"forgets more{on}", f"forgets less{on}",
                             f"{where}forgetting")
        text = (f"- `{method}` against `{reference}` (seeds {','.join(map(str, seeds))}): {gain} "
                f"(Δ {fmt(p['gain'], signed=True)}), {forgets} (accuracy Δ "
                f"{fmt(forget, signed=True)}")
        for key, label in (("forgetting_prob", "gold probability"),
                           ("forgetting_logp", "gold log-probability")):
            if key not in p:
                continue
            value = p[f"{key}_by_family"].get(primary) if primary else p[key]
            if value is None:
                continue
            word = _direction(value, "more", "less", "")
            text += (f"; {label} Δ {fmt(value, signed=True)}"
                     + (f", {word} forgetting" if word in ("more", "less") else ", not resolved"))
        lines.append(text + ").")
    return lines
