"""A continuous downstream measure: the model's mean per-token NLL of the gold test solutions.

Accuracy on a small model moves in coarse steps and can sit at zero; how likely the model finds
the expert solution (chat template, question as the user turn, as in SFT) moves smoothly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


@torch.no_grad()
def solution_nll(model_dir: Path, questions: list[str], solutions: list[str],
                 adapter_dir: Path | None = None, batch_size: int = 8) -> np.ndarray:
    """Per item: mean NLL (nats/token) of `solutions[i]` as the assistant turn after
    `questions[i]`, under the model in `model_dir` (plus a LoRA adapter; fp32, CPU or the
    first GPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlrewrite.device import device_name

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.to(device_name()).eval()
    rows = []
    for question, solution in zip(questions, solutions, strict=True):
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                               add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": solution}],
            tokenize=True, return_dict=True)["input_ids"]
        if full[: len(prompt)] != prompt:
            raise ValueError(f"{model_dir}: the chat template does not extend the prompt with "
                             "the assistant turn; cannot isolate the solution tokens")
        rows.append((full, len(prompt)))
    nll = np.zeros(len(rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start: start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), -100)
        for i, (full, cut) in enumerate(chunk):
            ids[i, : len(full)] = torch.tensor(full)
            mask[i, : len(full)] = 1
            labels[i, cut: len(full)] = torch.tensor(full[cut:])
        device = model.device
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        targets = labels[:, 1:].to(device)
        token_nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), targets.clamp(min=0), reduction="none")
        counted = (targets != -100).float()
        nll[start: start + len(chunk)] = ((token_nll * counted).sum(1) / counted.sum(1)).cpu()
    return nll
