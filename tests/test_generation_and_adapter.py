"""The hf generation engine and the rewriter adapter on the tiny model."""

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlrewrite.engines.adapters import (
    FINGERPRINT_FILE,
    AdapterError,
    load_rewriter,
    save_rewriter,
)
from rlrewrite.engines.hf_engine import HFGenerator

CONVERSATIONS = [[{"role": "user", "content": text}] for text in
                 ["Hi", "What is the capital of France? Answer in one word.", "2+2=?"]]


def test_greedy_batched_generation_matches_one_at_a_time(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batched = HFGenerator(model, tokenizer, batch_size=3, max_new_tokens=6, temperature=0.0)
    together = batched(CONVERSATIONS)
    alone = [HFGenerator(model, tokenizer, 1, 6, 0.0)([c])[0] for c in CONVERSATIONS]
    assert together == alone
    assert batched.stats.sequences == 3 and batched.stats.new_tokens > 0
    assert all(c.truncated for c in together)  # 6 new tokens: none of them ends its turn


def _adapter(tmp_path, tiny_model_dir, base_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules="all-linear",
                                                  init_lora_weights=False))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    save_rewriter(peft_model, tokenizer, tmp_path / "rewriter", base_dir)
    return peft_model


def test_adapter_round_trip_and_base_check(tmp_path, tiny_model_dir):
    trained = _adapter(tmp_path, tiny_model_dir, tiny_model_dir)
    loaded = load_rewriter(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           tmp_path / "rewriter", tiny_model_dir)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, trained(input_ids=ids).logits)

    stamp = tmp_path / "rewriter" / FINGERPRINT_FILE
    stamp.write_text(json.dumps({"config_sha256": "other", "weight_bytes": 1}))
    with pytest.raises(AdapterError, match="different base model"):
        load_rewriter(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "rewriter",
                      tiny_model_dir)


def test_adapter_of_another_architecture_is_a_clear_error(tmp_path, tiny_model_dir, real_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    other_dir = tmp_path / "wider"
    config = LlamaConfig(vocab_size=len(real_tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    LlamaForCausalLM(config).save_pretrained(other_dir)
    _adapter(tmp_path, tiny_model_dir, tiny_model_dir)
    (tmp_path / "rewriter" / FINGERPRINT_FILE).unlink()  # only the shapes can tell
    with pytest.raises(AdapterError, match="does not fit the base model"):
        load_rewriter(AutoModelForCausalLM.from_pretrained(other_dir), tmp_path / "rewriter", other_dir)


def test_adapter_file_missing_tensors_is_refused_not_run_as_the_base(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file, save_file

    _adapter(tmp_path, tiny_model_dir, tiny_model_dir)
    weights = tmp_path / "rewriter" / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k: v for k, v in tensors.items() if ".layers.1." not in k}, weights)
    with pytest.raises(AdapterError, match="adapter file is incomplete.*layers.1"):
        load_rewriter(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "rewriter",
                      tiny_model_dir)


def test_missing_adapter(tmp_path, tiny_model_dir):
    with pytest.raises(AdapterError, match="no LoRA adapter"):
        load_rewriter(None, tmp_path / "absent", tiny_model_dir)


def test_engine_factory_builds_the_hf_generator_and_refuses_unknown_engines(tiny_model_dir):
    from rlrewrite.engines.factory import make_generator

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    settings = dict(model=model, tokenizer=tokenizer, base_dir=tiny_model_dir, adapter_dir=None,
                    batch_size=2, max_new_tokens=4, temperature=1.0, seed=3, dtype=torch.float32)
    first = make_generator("hf", **settings)(CONVERSATIONS)
    again = make_generator("hf", **settings)(CONVERSATIONS)
    assert first == again  # the factory seeds sampling from the stage's seed
    assert len(first) == 3 and all(c.truncated for c in first)
    with pytest.raises(ValueError, match="unknown engine 'tpu'"):
        make_generator("tpu", **settings)


def test_missing_adapter_tensors_are_found_before_any_engine_loads_it(tmp_path, tiny_model_dir):
    """The check vLLM's served path relies on (it never loads the adapter through peft)."""
    from safetensors.torch import load_file, save_file

    from rlrewrite.engines.adapters import check_adapter, missing_adapter_tensors

    _adapter(tmp_path, tiny_model_dir, tiny_model_dir)
    adapter = tmp_path / "rewriter"
    assert missing_adapter_tensors(adapter, tiny_model_dir) == []
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k: v for k, v in tensors.items() if ".layers.1." not in k}, weights)
    missing = missing_adapter_tensors(adapter, tiny_model_dir)
    assert missing and all(".layers.1." in name for name in missing)
    with pytest.raises(AdapterError, match=r"adapter file is incomplete: \d+ tensor\(s\) missing"):
        check_adapter(adapter, tiny_model_dir)


def test_a_corrupt_adapter_config_is_named(tmp_path, tiny_model_dir):
    from rlrewrite.engines.adapters import check_adapter

    _adapter(tmp_path, tiny_model_dir, tiny_model_dir)
    config = tmp_path / "rewriter" / "adapter_config.json"
    config.write_text(config.read_text()[:40])
    with pytest.raises(AdapterError, match=r"rewriter/adapter_config.json: not a readable LoRA"):
        check_adapter(tmp_path / "rewriter", tiny_model_dir)
