"""Which runs a report reads, and what makes two runs comparable: DVC experiments (their params,
metrics and per-item scores read at their commit) and committed run records, each labelled by
method and pairing seed and named by a configuration digest of the params its method reads."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict

from rlrewrite.config import migrate
from rlrewrite.device import hardware
from rlrewrite.experiments import read_at

ITEMS = "data/eval/items.json"
TARGETS = "data/rewritten/train.jsonl"
SAMPLES = 20  # targets committed per run (the first questions of the sft split: the same in every run)
SFT_FIELDS = ("train_loss_first", "train_loss_final", "tokens_trained", "tokens_seen", "steps")
EVAL_FIELDS = ("gold_nll_base", "gold_nll_tuned", "gold_nll_shift", "truncated_base",
               "truncated_tuned", "no_answer_base", "no_answer_tuned")


class ReportError(ValueError):
    pass


# params that change how a run executes, not what it computes: left out of its configuration
EXECUTION_KEYS = {"launch": None, "vllm": None, "rewrite": ("generation_batch_size",),
                  "evaluate": ("batch_size",), "sft": ("save_steps",),
                  "rewriter": ("save_steps", "log_samples_every", "scoring_batch_size")}
# `rewriter` keys every rewriting method reads (the rewrite prompt, π0's QA form, the embedder
# of the diversity metrics); its other keys are the rewriter's training recipe
SHARED_REWRITER_KEYS = {"prompt_file", "qa_prefix", "embedder"}


def unread_keys(params: dict) -> list[tuple[str, str | None]]:
    """(section, key) of the params a run's method never reads (key None: the whole section):
    `original` and `dft` read neither the rewriter, the gate nor the rewrite settings, only
    `select` reads `rewrite.select`, and only the trained rewriter (`rl`, select from `rl`) its
    recipe. A new key or recipe change outside what a method reads leaves its configuration as
    it was."""
    rewrite = params.get("rewrite") if isinstance(params.get("rewrite"), dict) else {}
    method = rewrite.get("method")
    select = rewrite.get("select") if isinstance(rewrite.get("select"), dict) else {}
    if method == "original":
        return [("rewriter", None), ("gate", None)] + [("rewrite", k) for k in rewrite
                                                       if k != "method"]
    keys = [] if method == "select" else [("rewrite", "select")]
    if not (method == "rl" or (method == "select" and select.get("generator") == "rl")):
        keys += [("rewriter", k) for k in (params.get("rewriter") or {}) if k not in SHARED_REWRITER_KEYS]
    return keys


def config_digest(params: dict) -> str:
    """Six hex digits naming a configuration: the params a run's method reads, without the
    pairing seed and the keys that only change how a run executes, so runs that differ only in
    that seed (or machine) share it and a changed rewriter recipe does not. The pairing seed is
    `sft.seed` where set (the training seed then stays in the configuration), else `seed`.
    Params of runs made before a key was renamed are read under today's names (config.migrate)."""
    rest = migrate(params)
    sft = rest.get("sft") if isinstance(rest.get("sft"), dict) else {}
    if sft.get("seed") is None:
        rest.pop("seed", None)
    sft.pop("seed", None)
    left_out = [(s, k) for s, keys in EXECUTION_KEYS.items() for k in (keys or (None,))]
    for section, key in left_out + unread_keys(rest):
        if key is None:
            rest.pop(section, None)
        elif isinstance(rest.get(section), dict):
            rest[section].pop(key, None)
    return hashlib.sha1(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:6]


def samples_of(text: str | None) -> list[dict]:
    """The first SAMPLES targets of a run's training set: question, expert solution, target and
    whether it is an accepted rewrite (not a fallback)."""
    if not text:
        return []
    rows = [json.loads(line) for line in text.splitlines() if line.strip()][:SAMPLES]
    return [{"id": r.get("id"), "question": r.get("question"), "solution": r.get("solution"),
             "target": r.get("target"), "accepted": bool(r.get("rewritten"))} for r in rows]


def method_label(params: dict) -> str | None:
    """`rewrite.method`, or `dft` for expert targets under the DFT loss (`sft.loss: dft`);
    `select` with its rule (`select-low`), and its generator where that is the rewriter
    (`select-rl-low`)."""
    method = (params.get("rewrite") or {}).get("method")
    if method == "select":
        select = (params.get("rewrite") or {}).get("select") or {}
        method = "-".join(["select"] + (["rl"] if select.get("generator") == "rl" else [])
                          + [str(select.get("rule"))])
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
        # the pairing unit: the SFT seed where one is set (several SFT runs of one rewrite
        # output), else the training seed
        sft_seed = (params.get("sft") or {}).get("seed")
        entry = {"name": row["name"], "method": method_label(params),
                 "seed": params.get("seed") if sft_seed is None else sft_seed,
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
        entry["sft"] = {k: sft.get(k) for k in SFT_FIELDS if k in sft}
        downstream = row["metrics"].get("metrics/eval.json", {}).get("downstream", {})
        entry["eval"] = {k: downstream.get(k) for k in EVAL_FIELDS if k in downstream}
        entry["params"] = params
        entry["config"] = config_digest(params)
        entry["samples"] = samples_of(read(row["rev"], TARGETS))
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
    for record in kept:  # a record's configuration by today's rule, not the one it was saved by
        if record.get("params"):
            record["config"] = config_digest(record["params"])
    recorded = {r["name"]: r for r in kept}
    for entry in left_out or []:
        if entry["name"] in recorded:
            entry["reason"] += (f"; its record ({recorded[entry['name']]['record']}, commit "
                                f"{str(recorded[entry['name']]['rev'])[:7]}) is in the tables")
    runs = live + kept
    same_items(runs)
    return runs


def params_value(params: dict, key: str):
    value = params
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ReportError(f"--group-by {key}: no such params key ({part!r} missing)")
        value = value[part]
    return value


def group_labels(runs: list[dict], group_by: str = ""):
    """How runs are grouped into rows: the method, with the `group_by` params value beside it;
    a method whose runs ran under more than one configuration (another rewriter recipe, say)
    gets one row per configuration (`method@digest`), never one pooled row."""
    def base(run):
        if not group_by:
            return run["method"]
        return f"{run['method']} {group_by}={params_value(run.get('params') or {}, group_by)}"
    configs = defaultdict(set)
    for run in runs:
        configs[base(run)].add(run.get("config"))
    return lambda run: (base(run) if len(configs[base(run)]) <= 1
                        else f"{base(run)}@{run.get('config')}")
