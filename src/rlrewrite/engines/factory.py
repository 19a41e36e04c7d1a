"""The one place that turns `engine` into a generator: `hf` over the in-memory model, or `vllm`
over a model folder (the rewriter's LoRA served per request, or merged into a scratch folder)."""

from __future__ import annotations

from pathlib import Path

import torch

from rlrewrite.engines.hf_engine import HFGenerator


def make_generator(engine: str, *, model, tokenizer, base_dir: Path, adapter_dir: Path | None,
                   batch_size: int, max_new_tokens: int, temperature: float, seed: int,
                   dtype: torch.dtype, vllm_cfg=None, merged_dir: Path | None = None):
    """`model` is what `hf` runs (with the adapter already loaded where there is one);
    `vllm` starts its own engine from `base_dir` (+ `adapter_dir`, `vllm_cfg.rewriter_lora`)."""
    if engine == "hf":
        torch.manual_seed(seed)
        return HFGenerator(model, tokenizer, batch_size, max_new_tokens, temperature)
    if engine != "vllm":
        raise ValueError(f"engine: unknown engine '{engine}'; known: hf, vllm")
    from rlrewrite.engines.adapters import check_adapter
    from rlrewrite.engines.vllm_engine import VLLMGenerator, merge_adapter

    model_dir, lora_dir = base_dir, None
    if adapter_dir is not None:
        check_adapter(adapter_dir, base_dir)
        if vllm_cfg.rewriter_lora == "served":
            lora_dir = adapter_dir
        else:
            model_dir = merge_adapter(base_dir, adapter_dir, merged_dir, dtype)
    return VLLMGenerator(model_dir, tokenizer, max_new_tokens, temperature, seed,
                         str(dtype).removeprefix("torch."), vllm_cfg, lora_dir)
