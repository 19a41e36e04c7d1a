"""Weights checked before use: a truncated or corrupted safetensors file, or NaN/Inf weights,
stop the stage with a message naming the file, instead of a traceback or a model that loads and
scores garbage.

- Structure (cheap, every file): the 8-byte header length, a JSON header, and a file size equal
  to the header plus the largest tensor end offset it declares.
- Values (model outputs): every floating tensor finite. Up to `FULL_CHECK_BYTES` of a file is
  read whole (135M parameters: all of it, ~0.5 s); beyond that a seeded sample of tensors.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

from rlrewrite.errors import PipelineError

FULL_CHECK_BYTES = 2 * 1024**3
SAMPLED_TENSORS = 64


class IntegrityError(PipelineError, RuntimeError):
    pass


def check_structure(path: Path) -> dict:
    """The header of a safetensors file, after checking it against the file's size."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) < 8:
            raise IntegrityError(f"{path}: truncated ({size} bytes: no safetensors header)")
        (length,) = struct.unpack("<Q", raw)
        if length > size - 8:
            raise IntegrityError(f"{path}: truncated or corrupt (header of {length} bytes in a "
                                 f"{size}-byte file)")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"{path}: corrupt safetensors header ({exc})") from None
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise IntegrityError(f"{path}: corrupt safetensors header (no tensor offsets)") from None
    expected = 8 + length + max(ends, default=0)
    if size != expected:
        raise IntegrityError(f"{path}: {size} bytes, its header declares {expected} "
                             f"({'truncated' if size < expected else 'trailing bytes'})")
    return header


def check_values(path: Path, seed: int = 0) -> None:
    """Every floating tensor finite (a sample of tensors beyond FULL_CHECK_BYTES)."""
    import torch
    from safetensors import safe_open

    names = [k for k in check_structure(path) if k != "__metadata__"]
    if Path(path).stat().st_size > FULL_CHECK_BYTES and len(names) > SAMPLED_TENSORS:
        names = random.Random(seed).sample(names, SAMPLED_TENSORS)
    with safe_open(str(path), framework="pt") as tensors:
        for name in names:
            tensor = tensors.get_tensor(name)
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                bad = int((~torch.isfinite(tensor)).sum())
                raise IntegrityError(f"{path}: tensor {name} holds {bad} NaN/Inf values "
                                     "(corrupt weights; rerun the stage that wrote them)")


def check_weights(folder: Path, values: bool = True) -> None:
    """Every safetensors file of a model or adapter folder (values too, unless `values` is off)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise IntegrityError(f"{folder}: no .safetensors weights")
    for path in files:
        check_values(path) if values else check_structure(path)
