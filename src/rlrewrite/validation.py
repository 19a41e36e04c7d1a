"""Checks of params.yaml and of every input a stage will read, run by the `validate` stage before
any stage can delete an output (DVC removes a stage's outputs before running its command).

What the stage writes identifies the inputs DVC cannot track by itself: a local JSONL data source
by the sha256 of its contents; a local model folder named in params by its config's sha256 and
each weight file's size and modification time (hashing a 15 GB checkpoint on every `dvc repro`
would cost more than it saves). `prepare` depends on it, so it reruns when such an input changes
(or a model folder's weights are merely rewritten) and never otherwise.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rlrewrite.config import Params, ParamsError, load_params
from rlrewrite.dag import outputs
from rlrewrite.data.quiz import load_task_definitions
from rlrewrite.data.sources import open_source
from rlrewrite.data.splits import draw_splits
from rlrewrite.evaluation.standard_tasks import check_names
from rlrewrite.jsonl import DataError
from rlrewrite.prompts import JUDGE_FIELDS, REWRITE_FIELDS, load_template

QUIZ_TASKS = Path("data/bsd-quiz/tasks.yaml")
PROMPT_FIELDS = {"rewriter.prompt_file": REWRITE_FIELDS, "gate.judge_prompt_file": JUDGE_FIELDS}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_local_path(name: str) -> bool:
    return Path(name).exists() or name.startswith(("/", "./", "../"))


def weight_files(folder: Path) -> dict:
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted(folder.glob("*.safetensors"))}


def check_not_an_output(name: str, dvc_file: Path = Path("dvc.yaml")) -> None:
    """A model folder inside one of the pipeline's outputs would be deleted by DVC before the
    stage that reads it runs (`models/base` is `prepare`'s copy of `model.name`)."""
    folder = Path(name).resolve()
    root = dvc_file.resolve().parent
    for out in (outputs(dvc_file) if dvc_file.is_file() else []):
        out = (root / out).resolve()
        if folder == out or out in folder.parents:
            raise ParamsError(f"params.yaml: model.name: '{name}' lies in '{out.relative_to(root)}', "
                              "an output of this pipeline, which DVC deletes before the stage "
                              "that writes it runs: name the original model (an embedded "
                              "model, a hub id or a folder outside the pipeline's outputs)")


def check_model(name: str) -> dict:
    """The base model can be loaded offline and safely: an embedded package model, a local folder
    with a config and safetensors weights, or a hub id (in the local cache when offline)."""
    from rlrewrite.data.base_model import EMBEDDED, embedded_gguf
    from rlrewrite.engines.adapters import base_fingerprint

    if name.startswith("embedded:"):
        if name not in EMBEDDED:
            raise ParamsError(f"params.yaml: model.name: unknown embedded model '{name}'; "
                              f"known: {sorted(EMBEDDED)}")
        try:
            embedded_gguf(name)
        except FileNotFoundError as exc:
            raise ParamsError(f"params.yaml: {exc}") from None
        return {"model": name}
    if name.startswith("~"):
        raise ParamsError(f"params.yaml: model.name: '{name}': write the folder's full path "
                          "(transformers does not expand ~)")
    check_not_an_output(name)
    if is_local_path(name):
        folder = Path(name)
        if not folder.is_dir():
            raise ParamsError(f"params.yaml: model.name: '{name}' is not a folder")
        if not (folder / "config.json").is_file():
            raise ParamsError(f"params.yaml: model.name: '{name}' has no config.json: not an "
                              "HF model folder")
        if not any(folder.glob("*.safetensors")):
            pickled = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth"))
            raise ParamsError(f"params.yaml: model.name: '{name}' has no .safetensors weights"
                              + (f" (only {pickled}: pickle files, which may run code when "
                                 "loaded; convert them to safetensors)" if pickled else ""))
        return {"model": name, **base_fingerprint(folder), "weights": weight_files(folder)}
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except HFValidationError as exc:
        raise ParamsError(f"params.yaml: model.name: '{name}' is neither a local folder nor a "
                          f"hub id: {exc}") from None
    if constants.HF_HUB_OFFLINE:  # HF_HUB_OFFLINE=1/true/yes/on, as huggingface_hub reads it
        if not isinstance(cached, str):
            raise ParamsError(f"params.yaml: model.name: '{name}' is neither a local folder nor "
                              "in the local Hugging Face cache, and HF_HUB_OFFLINE forbids "
                              "downloading it")
        if not any(isinstance(try_to_load_from_cache(name, weights), str)
                   for weights in ("model.safetensors", "model.safetensors.index.json")):
            raise ParamsError(f"params.yaml: model.name: '{name}': the local Hugging Face cache "
                              "has its config.json but no .safetensors weights")
    return {"model": name}


LOCAL_SOURCES = Path("data/sources")  # prepare's DVC dependency: `dvc status` sees an edit


def check_data(params: Params) -> dict:
    """The source yields enough well-formed records for the splits (the code `prepare` runs)."""
    data = params.data
    # abspath: `..` resolved, a link kept (a link in data/sources to a file elsewhere is fine)
    if data.source == "jsonl" and not Path(os.path.abspath(data.name)).is_relative_to(
            LOCAL_SOURCES.absolute()):
        raise ParamsError(f"params.yaml: data.name: '{data.name}' must lie in {LOCAL_SOURCES}/, "
                          f"which `prepare` depends on so that `dvc status` sees an edit: move "
                          f"the file there, or link it (`ln -s`)")
    train = open_source(data, data.seed)
    test = open_source(data, data.seed, split=data.test_split) if data.test_split else None
    draw_splits(train, test, data.sizes, data.rl_shares_sft, data.test_templates)
    if data.source == "jsonl":
        return {"data": data.name, "sha256": file_digest(Path(data.name))}
    return {"data": f"{data.source}:{data.name}"}


def check_benchmarks(params: Params) -> None:
    bench = params.benchmarks
    check_names(list(bench.standard))
    definitions = load_task_definitions(QUIZ_TASKS)
    unknown = [name for name in bench.quiz_tasks if name not in definitions]
    if unknown:
        raise ParamsError(f"params.yaml: benchmarks.quiz_tasks: unknown task(s) {unknown}; "
                          f"defined in {QUIZ_TASKS}: {sorted(definitions)}")
    if bench.lm_eval_tasks:  # lm-eval's task index takes ~10 s to build: only when named
        from rlrewrite.evaluation.harness import task_manager, unknown_tasks

        manager = task_manager(tasks=list(bench.lm_eval_tasks))
        if unknown := unknown_tasks(list(bench.lm_eval_tasks), manager):
            raise ParamsError(f"params.yaml: benchmarks.lm_eval_tasks: lm-eval does not know "
                              f"task(s) {unknown}; see `lm_eval --tasks list`")
        check_offline_tasks(list(bench.lm_eval_tasks), manager)


def check_offline_tasks(names: list[str], manager) -> None:
    """Offline (HF_DATASETS_OFFLINE or HF_HUB_OFFLINE), an lm-eval task whose Hub dataset is not
    cached would end in a Hub traceback inside `evaluate-base`: name it here instead."""
    import datasets.config
    from huggingface_hub import constants

    from rlrewrite.evaluation.harness import hub_datasets, uncached_datasets

    if not (datasets.config.HF_HUB_OFFLINE or constants.HF_HUB_OFFLINE):
        return
    missing = {name: uncached for name, paths in hub_datasets(names, manager).items()
               if (uncached := uncached_datasets(paths, Path(constants.HF_HUB_CACHE),
                                                 Path(datasets.config.HF_DATASETS_CACHE)))}
    if missing:
        listed = "; ".join(f"{name} reads {', '.join(paths)}" for name, paths in missing.items())
        raise ParamsError(f"params.yaml: benchmarks.lm_eval_tasks: {listed}, not in the local "
                          "cache, and offline mode (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) forbids "
                          "downloading: run once with both set to 0 (`HF_HUB_OFFLINE=0 "
                          "HF_DATASETS_OFFLINE=0 make repro`), or drop the task")


def check_prompts(params: Params) -> None:
    for key, fields in PROMPT_FIELDS.items():
        section, name = key.split(".")
        path = Path(getattr(getattr(params, section), name))
        if not path.is_file():
            raise ParamsError(f"params.yaml: {key}: '{path}' does not exist")
        try:
            load_template(path, fields)
        except ValueError as exc:
            raise ParamsError(f"params.yaml: {key}: {exc}") from None


def model_config(name: str):
    """The base model's config without its weights: embedded (from the GGUF), a local folder, or
    a hub id in the local cache; None where it cannot be had offline (an uncached hub id)."""
    from transformers import AutoConfig

    from rlrewrite.data.base_model import EMBEDDED, embedded_gguf

    try:
        if name in EMBEDDED:
            folder, filename = embedded_gguf(name)
            return AutoConfig.from_pretrained(folder, gguf_file=filename)
        return AutoConfig.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError):
        return None


def linear_module_names(config) -> set[str]:
    """The last name part of every linear layer of the architecture (built on the meta device)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)}


def check_target_modules(params: Params) -> None:
    """Named LoRA target modules (not `all-linear`) must be linear layers of the base model: peft
    would otherwise fail deep inside the rewriter or SFT stage, after DVC removed its outputs."""
    named = {key: lora.target_modules for key, lora in (("rewriter.lora", params.rewriter.lora),
                                                        ("sft.lora", params.sft.lora))
             if isinstance(lora.target_modules, list)}
    if not named or (config := model_config(params.model.name)) is None:
        return
    linear = linear_module_names(config)
    for key, modules in named.items():
        if unknown := [m for m in modules if m not in linear]:
            raise ParamsError(f"params.yaml: {key}.target_modules: {unknown} are not linear "
                              f"layers of {params.model.name} (it has {sorted(linear)}; or "
                              "`all-linear`)")


def check_launch(params: Params) -> None:
    config_file = params.launch.config_file
    if config_file is not None and not Path(config_file).is_file():
        raise ParamsError(f"params.yaml: launch.config_file: '{config_file}' does not exist")


def check_engine(params: Params) -> None:
    if params.engine == "vllm":
        from rlrewrite.engines.installed import vllm_distribution

        vllm_distribution()


def validate(params_file: str | Path = "params.yaml") -> dict:
    """Everything the stages will read, checked; returns the digest of the untracked inputs."""
    params = load_params(params_file)
    check_engine(params)
    check_prompts(params)
    check_benchmarks(params)
    check_launch(params)
    inputs = {**check_model(params.model.name), **check_data(params)}
    check_target_modules(params)
    return {"inputs": inputs}


__all__ = ["DataError", "ParamsError", "validate"]
