"""Trainer checkpoints that resume an interrupted stage, and never a different run."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_checkpoint_dir(path: Path, key: str) -> bool:
    """Whether to resume from `path`: only if its checkpoints were made with the same inputs
    (`key`); otherwise it is emptied, so two different runs never mix."""
    stamp = path / "fingerprint.txt"
    has_checkpoint = any(path.glob("checkpoint-*"))
    if has_checkpoint and stamp.is_file() and stamp.read_text().strip() == key:
        return True
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    stamp.write_text(key + "\n")
    return False
