"""The generation engine seam: chat prompts in, completions out, batched, with throughput.

`hf` runs `transformers` `generate` (left padding, prompts sorted by length so batches waste
little padding). The GRPO rollouts go through TRL's own generation with the same `engine` param.
"""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

from rlrewrite.engines.completion import Completion, GenerationStats


class HFGenerator:
    """Batched `transformers` generation from chat messages."""

    def __init__(self, model, tokenizer, batch_size: int, max_new_tokens: int, temperature: float):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.stats = GenerationStats()

    def __call__(self, conversations: list[list[dict]],
                 desc: str = "generate") -> list[Completion]:
        texts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                 for c in conversations]
        encoded = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        outputs: list[str] = [""] * len(encoded)
        truncated = [False] * len(encoded)
        sampling = self.temperature > 0
        pad = self.tokenizer.pad_token_id
        device = next(self.model.parameters()).device
        with tqdm(total=len(order), desc=desc, unit="seq") as bar:
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                width = max(len(encoded[i]) for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for row, i in enumerate(batch):  # left padding
                    ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
                    mask[row, width - len(encoded[i]):] = 1
                started = time.perf_counter()
                with torch.no_grad():
                    generated = self.model.generate(
                        input_ids=ids.to(device), attention_mask=mask.to(device),
                        max_new_tokens=self.max_new_tokens, do_sample=sampling,
                        temperature=self.temperature if sampling else None,
                        top_p=None, top_k=None, pad_token_id=pad)
                self.stats.seconds += time.perf_counter() - started
                new = generated[:, width:]
                for row, i in enumerate(batch):
                    tokens = new[row]
                    length = int((tokens != pad).sum())
                    self.stats.new_tokens += length
                    truncated[i] = length >= self.max_new_tokens
                    outputs[i] = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
                self.stats.sequences += len(batch)
                bar.update(len(batch))
                bar.set_postfix(tok_s=f"{self.stats.tokens_per_second:.0f}")
        return [Completion(text, cut) for text, cut in zip(outputs, truncated)]
