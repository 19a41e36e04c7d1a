"""Finished experiments kept in git: `reports/runs/<name>.json`, one per experiment.

A DVC experiment lives in git refs and the DVC cache of the checkout that ran it; neither
travels with a `git clone` (nor survives a fresh checkout), so a seed grid that takes longer
than one working session would start over each time. The comparison report therefore writes
what it pairs and what lets anyone check a row — method, seeds, params and their configuration
digest, precision, hardware, the rewrite, SFT and downstream metrics (SFT loss first and last,
tokens trained, gold-solution NLL, truncation, no-answer) and the per-item base/tuned scores with
every option's log-likelihood — into one JSON file per experiment (~250 KB), and 20 of its SFT
targets into `<name>.samples.jsonl`, committed beside the report; it reads the records back next
to the live experiments. A live experiment replaces the record of the same name.
"""

from __future__ import annotations

import json
from pathlib import Path

FORMAT = 2
FIELDS = ("name", "method", "seed", "data_seed", "rev", "precision", "machine", "config", "params",
          "rewrite", "sft", "eval", "items")
# format 1 (reports/runs-2026-12-06): before the per-option log-likelihoods and the check fields;
# still read, with accuracy only
FIELDS_V1 = ("name", "method", "seed", "data_seed", "rev", "precision", "machine", "items", "rewrite")


class RecordError(ValueError):
    pass


def save(run: dict, directory: Path) -> dict:
    """Write `run` (a finished experiment as the comparison report loads it) as its record, and return
    the record."""
    missing = [k for k in FIELDS if k not in run]
    if missing:
        raise RecordError(f"experiment {run.get('name')}: no {', '.join(missing)} to record")
    path = directory / f"{run['name']}.json"
    record = {"format": FORMAT, **{k: run[k] for k in FIELDS}}
    directory.mkdir(parents=True, exist_ok=True)
    _write(path, json.dumps(record, separators=(",", ":")) + "\n")
    _write(directory / f"{run['name']}.samples.jsonl",
           "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in run.get("samples", [])))
    return record


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def load_one(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") not in (1, FORMAT):
        raise RecordError(f"{path}: not a run record of format 1 or {FORMAT} "
                          "(src/rlrewrite/run_records.py)")
    missing = [k for k in (FIELDS if record["format"] == FORMAT else FIELDS_V1) if k not in record]
    if missing:
        raise RecordError(f"{path}: missing {', '.join(missing)}")
    if record["name"] != path.stem:
        raise RecordError(f"{path}: holds experiment {record['name']!r}, not {path.stem!r}")
    return {**record, "record": str(path)}


def load(directory: Path) -> list[dict]:
    """Every record under `directory`, by name; none if it does not exist."""
    return [load_one(p) for p in sorted(directory.glob("*.json"))] if directory.is_dir() else []
