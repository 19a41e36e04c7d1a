"""Is bf16 faster than fp32 on this CPU? Forward passes and generation of the base model in both.

    python perf/precision_speed.py [--model models/base] [--batch 8] [--tokens 256]

What `precision: auto` should pick (device.py): run it as is, and with
ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 to measure an AMX machine as one with avx512_bf16 only.
Prints tokens/s per dtype for a forward pass over `--batch` x `--tokens` tokens and for greedy
generation of 32 new tokens per row, and the achieved forward FLOP/s (2 x params x tokens / s).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlrewrite.compat import cpu_has_amx_tiles


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN picks and caches kernels per shape
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def measure(model_dir: str, dtype: torch.dtype, batch: int, tokens: int) -> dict:
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(100, tokenizer.vocab_size - 100, (batch, tokens))
    with torch.no_grad():
        forward = timed(lambda: model(input_ids=ids), 3)
        prompt = ids[:, :64]
        generate = timed(lambda: model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                                max_new_tokens=32, min_new_tokens=32,
                                                do_sample=False,
                                                pad_token_id=tokenizer.eos_token_id), 2)
    return {"forward_tokens_per_s": round(batch * tokens / forward, 1),
            "forward_gflops": round(2 * params * batch * tokens / forward / 1e9, 1),
            "generate_tokens_per_s": round(batch * 32 / generate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    result = {"amx_tiles": cpu_has_amx_tiles(), "threads": torch.get_num_threads(),
              "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        result[name] = measure(args.model, dtype, args.batch, args.tokens)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
