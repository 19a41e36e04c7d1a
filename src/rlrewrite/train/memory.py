"""Keeping CPU training within laptop memory (benchmarks/sft_memory.py measures both).

- TRL's fused LM head scores a micro-batch's positions in tiles of 32,768 where it has no Triton
  kernel (CPU), so one tile is the whole micro-batch: the (tokens x vocab) fp32 logits, their
  softmax and gradient are the largest allocations of a step. With 512-position tiles, SFT of
  SmolLM2 (49k vocabulary) on its 64 longest examples peaked at 3.9 instead of 5.5 GiB, no slower.
- Micro-batches of different lengths fragment the C heap, so the resident set creeps up over a
  run unless the free pages go back to the OS (glibc's malloc_trim) after every micro-batch.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from transformers import TrainerCallback

from rlrewrite.compat import set_trl_logprob_tile

CPU_LOGPROB_TILE = 512


def use_small_logprob_tiles(tile: int = CPU_LOGPROB_TILE) -> None:
    set_trl_logprob_tile(tile)


class ReturnFreedHeap(TrainerCallback):
    """Hands the C heap's free pages back to the OS after every micro-batch (glibc only)."""

    def __init__(self):
        library = ctypes.util.find_library("c")
        self.trim = getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None

    def _release(self):
        if self.trim is not None:
            self.trim(0)

    def on_substep_end(self, args, state, control, **kwargs):
        self._release()

    def on_step_end(self, args, state, control, **kwargs):
        self._release()
