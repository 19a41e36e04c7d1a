"""GRPO + LoRA on a tiny random model: the real TRL trainer, our reward, groups, resuming."""

import shutil
from pathlib import Path

from rlrewrite.config import load_params
from rlrewrite.prompts import rewrite_prompt
from rlrewrite.train.checkpoints import prepare_checkpoint_dir
from rlrewrite.train.grpo import build_rl_dataset, build_trainer

REPO = Path(__file__).resolve().parents[1]
RECORDS = [{"id": f"r{i}", "question": f"What is {i} + {i}?", "solution": f"{i} + {i} = {2 * i}\n#### {2 * i}",
            "answer": str(2 * i)} for i in range(1, 7)]


def tiny_params(judge=False, **rewriter):
    params = load_params(REPO / "params.yaml")
    settings = dict(num_generations=2, questions_per_device=2, gradient_accumulation_steps=1,
                    max_steps=2, save_steps=1, embedder="policy", log_samples_every=1,
                    prompt_file=str(REPO / "data/prompts/rewrite.txt"))
    settings.update(rewriter)
    gate = params.gate.model_copy(update={
        "judge": judge, "judge_prompt_file": str(REPO / "data/prompts/judge.txt")})
    # hf rollouts: the tiny model's head size is not one vLLM's CPU kernels take
    return params.model_copy(update={
        "engine": "hf", "precision": "fp32", "gate": gate,
        "rewrite": params.rewrite.model_copy(update={"max_new_tokens": 12}),
        "rewriter": params.rewriter.model_copy(update=settings)})


def test_rl_dataset_renders_prompts_and_skips_unparseable_gold():
    template = "Rewrite {solution} for {question}; end with \\boxed{}."
    dataset, skipped = build_rl_dataset(RECORDS[:2] + [{**RECORDS[2], "answer": "\\frac{"}], template)
    assert skipped == 1 and len(dataset) == 2
    assert dataset[0]["prompt"] == rewrite_prompt(template, RECORDS[0]["question"], RECORDS[0]["solution"])
    assert "\\boxed{}" in dataset[0]["prompt"][0]["content"]
    assert dataset.column_names == ["prompt", "question", "answer", "solution", "id"]


def test_grpo_steps_hand_whole_groups_to_the_reward(tmp_path, tiny_model_dir):
    samples = []
    trainer, reward, skipped = build_trainer(tiny_params(judge=True), tiny_model_dir, RECORDS,
                                             tmp_path / "ckpt", report_to=[],
                                             on_samples=lambda step, table: samples.append(table))
    seen_ids = []
    original = reward.score

    def spy(texts, questions, answers, solutions, ids, truncated=None):
        seen_ids.append(list(ids))
        return original(texts, questions, answers, solutions, ids, truncated)

    reward.score = spy
    trainer.train()

    assert skipped == 0 and len(seen_ids) == 2
    for ids in seen_ids:  # 2 questions x K=2 per step, each question's rewrites adjacent
        assert len(ids) == 4 and ids[0] == ids[1] and ids[2] == ids[3]
    logged = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(logged) == 2
    for key in ("rewrite/gate_pass_rate", "rewrite/answer_pass_rate", "rewrite/reasoning_pass_rate",
                "rewrite/echo_pass_rate",
                "rewrite/answer_only_share", "rewrite/length_ratio", "rewrite/truncated_share",
                "rewrite/r_div_feasible_mean", "rewrite/qa_nll_group_spread",
                "rewrite/qa_nll_vs_expert",
                "rewrite/feasible_set_size", "rewrite/dead_group_share", "kl", "completions/mean_length"):
        assert key in logged[0], key
    assert samples and set(samples[0]) >= {"prompt", "rewrite", "gate", "r_dist", "r_div", "reward"}
    # only the LoRA adapter trains; the base weights are untouched
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # the scorer sees π0 through the same (peft) model
    assert reward.scorer.model is trainer.model


def test_resume_from_checkpoint_continues_the_step_count(tmp_path, tiny_model_dir):
    ckpt = tmp_path / "ckpt"
    assert prepare_checkpoint_dir(ckpt, "key-1") is None
    first, _, _ = build_trainer(tiny_params(max_steps=1), tiny_model_dir, RECORDS, ckpt, report_to=[])
    first.train()
    assert (ckpt / "checkpoint-1").is_dir()

    # a kill while checkpoint-2 was being saved: its weights are there, its state is not
    shutil.copytree(ckpt / "checkpoint-1", ckpt / "checkpoint-2")
    (ckpt / "checkpoint-2/trainer_state.json").write_text('{"global_step": 2, "log_hist')
    resume = prepare_checkpoint_dir(ckpt, "key-1")  # same inputs: resume, from the complete one
    assert resume == str(ckpt / "checkpoint-1") and not (ckpt / "checkpoint-2").exists()
    second, _, _ = build_trainer(tiny_params(max_steps=2), tiny_model_dir, RECORDS, ckpt, report_to=[])
    second.train(resume_from_checkpoint=resume)
    assert second.state.global_step == 2
    assert [e["step"] for e in second.state.log_history if "reward" in e] == [1, 2]

    assert prepare_checkpoint_dir(ckpt, "key-2") is None  # other inputs: never mix
    assert not any(ckpt.glob("checkpoint-*"))


def test_first_step_trains_at_the_full_learning_rate(tmp_path, tiny_model_dir):
    """No warm-up unless `rewriter.warmup_steps` asks: the old config spent step 1 at lr 0."""
    trainer, _, _ = build_trainer(tiny_params(max_steps=1), tiny_model_dir, RECORDS,
                                  tmp_path / "ckpt", report_to=[])
    trainer.train()
    lr = [e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]
    assert lr and lr[0] == tiny_params().rewriter.learning_rate
    warm, _, _ = build_trainer(tiny_params(warmup_steps=2), tiny_model_dir, RECORDS,
                               tmp_path / "ckpt2", report_to=[])
    assert warm.args.warmup_steps == 2
