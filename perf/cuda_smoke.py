"""GPU check of the CUDA path: GRPO+LoRA steps and SFT steps with `precision: auto` (bf16 on
CUDA) on a tiny random model built from a saved tokenizer. Prints dtypes, devices and timings.
    python perf/cuda_smoke.py TOKENIZER_DIR
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import torch  # noqa: E402
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from rlrewrite.config import load_params  # noqa: E402
from rlrewrite.train.grpo import build_trainer  # noqa: E402
from rlrewrite.train.sft import build_sft_trainer, sft_dataset  # noqa: E402

RECORDS = [{"id": f"r{i}", "question": f"What is {i} + {i}?", "solution": f"{i} + {i} = {2 * i}\n#### {2 * i}",
            "answer": str(2 * i), "target": f"{i} + {i} = {2 * i}. \\boxed{{{2 * i}}}"} for i in range(8)]


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
    params = load_params(REPO / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
        LlamaForCausalLM(config).save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")

        rewriter = params.rewriter.model_copy(update={
            "num_generations": 2, "questions_per_device": 2, "gradient_accumulation_steps": 1,
            "max_steps": 2, "save_steps": 100, "embedder": "policy", "log_samples_every": 0,
            "prompt_file": str(REPO / "data/prompts/rewrite.txt")})
        gate = params.gate.model_copy(update={
            "judge": True, "judge_prompt_file": str(REPO / "data/prompts/judge.txt")})
        rewrite = params.rewrite.model_copy(update={"max_new_tokens": 16})
        p = params.model_copy(update={"rewriter": rewriter, "gate": gate, "rewrite": rewrite,
                                      "precision": "auto"})
        trainer, reward, _ = build_trainer(p, tmp / "model", RECORDS, tmp / "grpo", report_to=[])
        started = time.perf_counter()
        trainer.train()
        weight = next(trainer.model.parameters())
        lora = [q for n, q in trainer.model.named_parameters() if "lora_" in n][0]
        print(f"GRPO: 2 steps in {time.perf_counter() - started:.1f} s; base weights {weight.dtype} "
              f"on {weight.device}; LoRA {lora.dtype}; bf16 autocast={trainer.args.bf16}; "
              f"rewards {[round(e['reward'], 3) for e in trainer.state.log_history if 'reward' in e]}")
        assert weight.device.type == "cuda" and weight.dtype == torch.bfloat16

        sft_cfg = params.sft.model_copy(update={"epochs": 1.0, "per_device_train_batch_size": 4,
                                                "max_length": 64})
        sft = build_sft_trainer(sft_cfg, 0, tmp / "model", sft_dataset(RECORDS, "smoke"), tmp / "sft", [],
                                precision="auto")
        started = time.perf_counter()
        result = sft.train()
        weight = next(sft.model.parameters())
        print(f"SFT: {sft.state.global_step} steps in {time.perf_counter() - started:.1f} s, loss "
              f"{result.training_loss:.3f}; weights {weight.dtype} on {weight.device}; bf16={sft.args.bf16}")
        assert weight.device.type == "cuda"
    print("CUDA smoke check passed")


if __name__ == "__main__":
    main()
