"""Building TRL's SFTTrainer for π0 on (question, target) pairs (docs/method.md, Stage 3).

Examples are conversational prompt-completion pairs, so the chat template wraps them and the
loss covers the completion (the answer) tokens only.
"""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset

from rlrewrite.config import SFTParams
from rlrewrite.device import on_gpu, use_bf16
from rlrewrite.prompts import user_turn
from rlrewrite.train.memory import ReturnFreedHeap, fit_lm_head_to_cpu


def sft_dataset(records: list[dict], source: str) -> Dataset:
    if not records:
        raise ValueError(f"{source}: the SFT training set is empty")
    rows = []
    for lineno, record in enumerate(records, start=1):
        target = record.get("target")
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f"{source}:{lineno}: record '{record.get('id')}' has no target")
        rows.append({"prompt": user_turn(record["question"]),
                     "completion": [{"role": "assistant", "content": target}]})
    return Dataset.from_list(rows)


def build_sft_trainer(cfg: SFTParams, seed: int, model_dir: Path, dataset: Dataset,
                      output_dir: Path, report_to: list[str], callbacks=(), *, precision: str):
    """TRL's SFTTrainer from `sft.*`; `precision` is the top-level key (bf16: mixed precision)."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    on_cpu = not on_gpu()
    callbacks = list(callbacks)
    if on_cpu:
        fit_lm_head_to_cpu()
        callbacks.append(ReturnFreedHeap())
    # fp32 master weights; bf16 (where fast) as mixed precision, so full fine-tuning stays exact
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type="cosine",
        completion_only_loss=True,
        loss_type=cfg.loss,
        bf16=use_bf16(precision),
        use_cpu=on_cpu,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        report_to=report_to,
        include_num_input_tokens_seen="non_padding",
    )
    peft_config = None
    if cfg.mode == "lora":
        peft_config = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha,
                                 lora_dropout=cfg.lora.dropout,
                                 target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                      peft_config=peft_config, callbacks=callbacks)
