"""What every stage script shares: its error boundary (`run_stage("sft", main)`), its prologue
(`open_stage`: params, engine and inputs checked) and its epilogue (`finish_stage`: the metrics
file with time, memory and device).

A stage script imports torch, transformers and MLflow inside `main`, after `open_stage`: a bad
param, a missing input or an absent vLLM ends the stage in ~2 s instead of ~10, and a stage with
nothing to do for the method (the rewriter for `original`) skips them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from rlrewrite.dag import recorded_outputs, stage_graph
from rlrewrite.errors import MissingInputError, PipelineError
from rlrewrite.ranks import is_main_process
from rlrewrite.workspace_lock import one_run


def check_inputs(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> None:
    """Every dependency `stage` declares in dvc.yaml exists: a missing one is a MissingInputError
    naming the file and the stage that writes it."""
    graph = stage_graph(dvc_yaml)
    for dep in graph[stage]["deps"]:
        if Path(dep).exists():
            continue
        writers = [name for name, entry in graph.items() if name != stage and any(
            dep == out or dep.startswith(f"{out}/") for out in entry["outs"] + entry["metrics"])]
        raise MissingInputError(
            f"{dep} is missing: stage '{writers[0]}' writes it (`dvc repro {writers[0]}`)"
            if writers else f"{dep} is missing ({dvc_yaml} lists it as an input of '{stage}')")


def open_stage(stage: str):
    """Every stage's prologue: its params (validated; only the keys its dvc.yaml entry lists can
    be read), the engine it is set to use, and every input it declares, all checked before it
    reads anything. Returns its params view (rlrewrite/stage_params.py)."""
    from rlrewrite.stage_params import load_stage_params

    params = load_stage_params(stage)
    if params.declares("engine") and params.engine == "vllm":
        from rlrewrite.engines.installed import vllm_distribution

        vllm_distribution()
    check_inputs(stage)
    return params


def finish_stage(path: str | Path, metrics: dict, precision: str | None = None,
                 engine: str | None = None) -> dict:
    """Every stage's epilogue: `metrics` with the stage's usage (time, peak memory, device, and
    the precision and engine where it runs a model) and its MLflow run's reference, written to
    `path`; the usage logged to the active MLflow run. Returns what it wrote."""
    from rlrewrite.jsonl import write_json
    from rlrewrite.resources import log_usage, stage_usage
    from rlrewrite.tracking import run_reference

    usage = stage_usage(precision, engine)
    written = {**metrics, **usage, **run_reference()}
    write_json(path, written)
    log_usage(usage)
    return written


def restore_from_cache(stage: str) -> list[str]:
    """`stage`'s outputs as its last successful run left them (dvc.lock), put back from DVC's
    cache: what `dvc checkout <stage>` does, which would wait on the lock of the `dvc` running
    this stage. Best effort, on the way out of a failure: returns the outputs put back, and
    whatever cannot be (not a DVC project, not in the cache) stays missing."""
    from dvc.repo import Repo

    restored = []
    try:
        with Repo(".") as repo:
            for entry in repo.stage.collect(stage):
                for out in entry.outs:
                    if not out.exists and out.use_cache and out.hash_info:
                        out.checkout(force=True)
                        restored.append(out.def_path)
    except Exception:  # noqa: BLE001 - the stage's own error is the one to report
        pass
    return restored


def restore_after_failure(stage: str) -> str:
    """DVC deleted the stage's outputs before running it (`dvc repro -s` skips `validate`, so a
    bad param reaches the stage itself). What its last successful run recorded comes back: the
    committed metrics files (`cache: false`) from git, the rest from DVC's cache. Returns what
    the error line adds: what was restored, or the command for what could not be."""
    recorded = recorded_outputs(stage)
    missing = [p for p in recorded if not Path(p).exists()]
    if not missing:
        return ""
    tracked = subprocess.run(["git", "ls-files", "--", *missing], capture_output=True,
                             text=True).stdout.split()
    if tracked:
        subprocess.run(["git", "checkout", "HEAD", "--", *tracked], capture_output=True)
    if any(not Path(p).exists() for p in missing):
        restore_from_cache(stage)
    rest = [p for p in missing if not Path(p).exists()]
    if rest:
        return f"; `dvc checkout {stage}` restores its previous outputs ({', '.join(rest)})"
    return f" (its previous outputs are back: {', '.join(sorted(missing))})"


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's `main` as a stage of one run per workspace, stopped if the `dvc` that started
    it dies (rlrewrite/workspace_lock.py); an expected failure (a PipelineError) ends the process
    with one line, `<stage>: <what is wrong, naming the key or file>`, and exit status 1, after
    putting back what it can of the outputs DVC deleted."""
    try:
        with one_run(name):
            main()
    except PipelineError as exc:
        if not is_main_process():  # rank 0 puts the outputs back and reports
            sys.exit(1)
        restored = restore_after_failure(name)
        tracking = sys.modules.get("rlrewrite.tracking")  # not imported: no MLflow run was opened
        try:
            if tracking is not None:  # a check after the work: its MLflow run FAILED
                tracking.fail_finished_runs(f"{name}: {exc}")
        except Exception as mlflow_error:  # noqa: BLE001 - the stage's error comes first
            print(f"{name}: could not mark its MLflow run FAILED: {mlflow_error}", file=sys.stderr)
        sys.exit(f"{name}: {exc}{restored}")
