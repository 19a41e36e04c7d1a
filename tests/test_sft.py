"""SFT on the tiny model: prompt-completion pairs, loss on the answer tokens only."""

import pytest
import torch
from conftest import REPO
from transformers import AutoModelForCausalLM

from rlrewrite.config import load_params
from rlrewrite.train.sft import build_sft_trainer, sft_dataset

RECORDS = [{"id": f"r{i}", "question": f"What is {i} + {i}?", "target": f"{i} + {i} = {2 * i}. \\boxed{{{2 * i}}}"}
           for i in range(6)]


def cfg(**changes):
    base = load_params(REPO / "params.yaml").sft
    settings = dict(epochs=1.0, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                    max_length=64, save_steps=100)
    settings.update(changes)
    return base.model_copy(update=settings)


def test_dataset_is_conversational_prompt_completion():
    dataset = sft_dataset(RECORDS, "train.jsonl")
    assert dataset[0]["prompt"] == [{"role": "user", "content": "What is 0 + 0?"}]
    assert dataset[0]["completion"][0]["role"] == "assistant"


@pytest.mark.parametrize("records, message", [
    ([], "empty"),
    ([{"id": "a", "question": "q", "target": ""}], r"train.jsonl:1: record 'a' has no target"),
])
def test_bad_training_sets(records, message):
    with pytest.raises(ValueError, match=message):
        sft_dataset(records, "train.jsonl")


def test_loss_covers_only_the_answer_tokens(tmp_path, tiny_model_dir):
    trainer = build_sft_trainer(cfg(), 0, tiny_model_dir, sft_dataset(RECORDS, "t"), tmp_path, [], precision="fp32")
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels, ids = batch["labels"][0], batch["input_ids"][0]
    scored = ids[labels != -100]
    text = trainer.processing_class.decode(scored)
    assert "\\boxed{0}" in text and "What is 0 + 0?" not in text
    assert (labels[:5] == -100).all()


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_training_runs_and_saves(tmp_path, tiny_model_dir, mode):
    trainer = build_sft_trainer(cfg(mode=mode, learning_rate=1e-3), 0, tiny_model_dir,
                                sft_dataset(RECORDS, "t"), tmp_path / "ckpt", [], precision="fp32")
    result = trainer.train()
    assert trainer.state.global_step == 3 and result.training_loss > 0
    assert trainer.state.num_input_tokens_seen > 0
    trainer.save_model(str(tmp_path / "out"))
    if mode == "lora":
        assert (tmp_path / "out" / "adapter_config.json").exists()
    else:
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
        original = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        assert not torch.equal(reloaded.model.norm.weight, original.model.norm.weight) or \
            not torch.equal(reloaded.lm_head.weight, original.lm_head.weight)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only: GPUs keep TRL's tiles")
def test_cpu_training_scores_in_small_tiles_with_the_same_loss(tmp_path, tiny_model_dir):
    from rlrewrite.compat import trl_logprob_tile
    from rlrewrite.train.memory import (
        CPU_LOGPROB_TILE,
        ReturnFreedHeap,
        fit_lm_head_to_cpu,
    )

    trainer = build_sft_trainer(cfg(), 0, tiny_model_dir, sft_dataset(RECORDS, "t"), tmp_path, [], precision="fp32")
    assert trl_logprob_tile() == CPU_LOGPROB_TILE
    assert any(isinstance(c, ReturnFreedHeap) and c.trim is not None
               for c in trainer.callback_handler.callbacks)  # glibc on Linux
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    losses = []
    for tile in (32768, 7):  # one tile for the whole batch, or many (7 does not divide it)
        fit_lm_head_to_cpu(tile)
        with torch.no_grad():
            losses.append(trainer.model(**batch, fused_lm_head=True).loss)
    fit_lm_head_to_cpu()
    assert batch["input_ids"].numel() > 7
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)


def test_dft_loss_weights_each_token_by_its_probability(tmp_path, tiny_model_dir):
    """`sft.loss: dft` reaches TRL: on the same batch, the DFT loss is the NLL with every token
    weighted by its (detached) probability, so it is far below the NLL on a random model."""
    losses = {}
    for loss in ("nll", "dft"):
        trainer = build_sft_trainer(cfg(loss=loss), 0, tiny_model_dir, sft_dataset(RECORDS, "t"),
                                    tmp_path / loss, [], precision="fp32")
        assert trainer.args.loss_type == loss
        batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[0]]))
        with torch.no_grad():
            losses[loss] = float(trainer.compute_loss(trainer.model, batch))
    assert losses["nll"] > 5  # near ln(vocabulary) on random weights
    assert 0 < losses["dft"] < losses["nll"] / 100


def test_dft_gradient_is_that_of_the_detached_probability_weighted_nll(tmp_path, tiny_model_dir):
    """DFT's loss is Σ sg(p)·(−log p)/N over labelled tokens: its gradient is the NLL's scaled by
    p, with p held constant. A loss value cannot tell a detached p from a live one; the gradient
    can, so a change of TRL's loss path would fail here."""
    trainer = build_sft_trainer(cfg(loss="dft"), 0, tiny_model_dir, sft_dataset(RECORDS, "t"),
                                tmp_path, [], precision="fp32")
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i]
                                                           for i in range(3)]))
    model = trainer.model
    params = [p for p in model.parameters() if p.requires_grad]

    def gradient(loss):
        model.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in params]).clone()

    trl = gradient(trainer.compute_loss(model, batch))
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(
        -1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)[mask]
    detached = gradient((logp.exp().detach() * -logp).sum() / mask.sum())
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(
        -1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)[mask]
    live = gradient((logp.exp() * -logp).sum() / mask.sum())
    torch.testing.assert_close(trl, detached, rtol=1e-3, atol=1e-9)
    assert (trl - live).norm() > 0.5 * live.norm()  # a live p would be caught


def test_tokens_trained_counts_the_labelled_tokens(tmp_path, tiny_model_dir):
    import importlib.util

    spec = importlib.util.spec_from_file_location("sft_stage", REPO / "src/sft.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    trainer = build_sft_trainer(cfg(), 0, tiny_model_dir, sft_dataset(RECORDS, "t"), tmp_path, [], precision="fp32")
    rows = [trainer.train_dataset[i] for i in range(len(RECORDS))]
    labelled = int((trainer.data_collator(rows)["labels"] != -100).sum())
    assert stage.completion_tokens(trainer.train_dataset) == labelled > len(RECORDS)
    cut = min(len(ids) for ids in trainer.train_dataset["input_ids"]) - 2
    short = build_sft_trainer(cfg(max_length=cut), 0, tiny_model_dir, sft_dataset(RECORDS, "t"),
                              tmp_path / "short", [], precision="fp32")
    assert 0 < stage.completion_tokens(short.train_dataset) < labelled  # truncated
