"""Building the GRPO + LoRA trainer for the rewriter from params (docs/method.md, Stage 1)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from datasets import Dataset
from transformers import TrainerCallback

from rlrewrite.config import Params, RewriterParams, VLLMParams
from rlrewrite.device import on_gpu, process_device, use_bf16, weights_dtype
from rlrewrite.prompts import REWRITE_FIELDS, load_template, rewrite_prompt
from rlrewrite.ranks import free_port
from rlrewrite.reward.answers import gold_is_parseable
from rlrewrite.reward.gate import build_gate, build_scorer
from rlrewrite.reward.grpo_reward import RewriteReward
from rlrewrite.reward.scoring import MiniLMEmbedder
from rlrewrite.train.memory import ReturnFreedHeap, fit_lm_head_to_cpu

ROLLOUT_MAX_MODEL_LEN = 2048  # prompt tokens the colocated vLLM engine accepts


def build_rl_dataset(records: list[dict], template: str) -> tuple[Dataset, int]:
    """Conversational prompts plus the columns the reward reads; questions whose gold answer
    math-verify cannot parse are skipped and counted."""
    rows, skipped = [], 0
    for record in records:
        if not gold_is_parseable(record["answer"]):
            skipped += 1
            continue
        rows.append({"prompt": rewrite_prompt(template, record["question"], record["solution"]),
                     "question": record["question"], "answer": record["answer"],
                     "solution": record["solution"], "id": record["id"]})
    if not rows:
        raise ValueError("no rl question has a parseable gold answer")
    return Dataset.from_list(rows), skipped


def rollout_args(engine: str, vllm_cfg: VLLMParams | None, max_completion_length: int,
                 model_dir: Path | None) -> dict:
    """GRPOConfig fields for the rollout engine: TRL's own generate, vLLM colocated in the
    training process (one device), or a `trl vllm-serve` server (multi-GPU; docs/engines.md)."""
    if engine == "hf":
        return {}
    from rlrewrite.engines.installed import vllm_distribution
    from rlrewrite.engines.vllm_engine import configure_environment, context_length

    vllm_distribution()
    configure_environment(vllm_cfg)
    if vllm_cfg.rollout_mode == "server":
        return {"use_vllm": True, "vllm_mode": "server",
                "vllm_server_base_url": vllm_cfg.server_base_url}
    # TRL's colocated engine takes torch.distributed's MASTER_PORT, or else the first free one
    # of 29500, 23456, ...: two runs starting together (a grid's, the test suite's) both find
    # 29500 free and the second fails with EADDRINUSE. A launch (torchrun) has set it already.
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    if vllm_cfg.enforce_eager:
        from rlrewrite.compat import build_colocated_vllm_eagerly

        build_colocated_vllm_eagerly()
    return {"use_vllm": True, "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": vllm_cfg.gpu_memory_utilization,
            "vllm_max_model_length": context_length(
                model_dir, ROLLOUT_MAX_MODEL_LEN + max_completion_length)}


def grpo_config(params: Params, output_dir: Path, report_to: list[str],
                model_dir: Path | None = None):
    """TRL's GRPOConfig from `rewriter.*`, the seed, `precision` and the rewrite token budget
    `rewrite.max_new_tokens`."""
    from trl import GRPOConfig

    cfg, seed, max_completion_length = params.rewriter, params.seed, params.rewrite.max_new_tokens
    return GRPOConfig(
        **rollout_args(params.engine, params.vllm, max_completion_length, model_dir),
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps,
        # each process holds whole groups: its batch is a multiple of num_generations
        per_device_train_batch_size=cfg.questions_per_device * cfg.num_generations,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_generations=cfg.num_generations,
        num_iterations=cfg.num_iterations,
        temperature=cfg.temperature,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        max_completion_length=max_completion_length,
        bf16=use_bf16(params.precision),
        use_cpu=not on_gpu(),
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        report_to=report_to,
        remove_unused_columns=False,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=cfg.warmup_steps,
        gradient_checkpointing=cfg.gradient_checkpointing,
        disable_dropout=True,
    )


def lora_config(cfg: RewriterParams):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")


class StepTimer(TrainerCallback):
    """Wall seconds of each optimiser step (rollouts, reward and update)."""

    def __init__(self):
        self.step_seconds: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.perf_counter() - self._start)


def build_trainer(params: Params, model_dir: Path, records: list[dict], output_dir: Path,
                  report_to: list[str], callbacks=(), on_samples=None):
    """(trainer, reward function, skipped questions) ready to `train()`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    cfg = params.rewriter
    template = load_template(cfg.prompt_file, REWRITE_FIELDS)
    dataset, skipped = build_rl_dataset(records, template)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=weights_dtype(params.precision))

    scorer = build_scorer(params.gate, cfg, model, tokenizer)
    embedder = None
    if cfg.lambda_div > 0:
        embedder = scorer if cfg.embedder == "policy" else MiniLMEmbedder(process_device())
    end_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    gate = build_gate(params.gate, scorer, template)
    reward = RewriteReward(gate, scorer, embedder, cfg.num_generations, cfg.lambda_dist,
                           cfg.lambda_div, end_ids, cfg.truncated, on_samples,
                           cfg.log_samples_every, lambda_anchor=cfg.lambda_anchor)
    args = grpo_config(params, output_dir, report_to, model_dir)
    callbacks = list(callbacks)
    if not on_gpu():  # issue 13: 88.5 -> 68 s/step, 6.5 -> 5.2 GiB peak
        fit_lm_head_to_cpu()
        callbacks.append(ReturnFreedHeap())
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args,
                          train_dataset=dataset, processing_class=tokenizer,
                          peft_config=lora_config(cfg), callbacks=callbacks)
    if params.engine == "vllm" and args.vllm_mode == "colocate" and not on_gpu():
        from rlrewrite.compat import sync_weights_by_reload

        sync_weights_by_reload(trainer.vllm_generation)
    # π0 = the trained model with its adapter disabled: the scorer shares the policy's weights
    scorer.model = trainer.accelerator.unwrap_model(trainer.model)
    return trainer, reward, skipped
