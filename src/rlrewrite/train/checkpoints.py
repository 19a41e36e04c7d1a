"""Trainer checkpoints that resume an interrupted stage, and never a different run."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from rlrewrite.integrity import IntegrityError, check_weights
from rlrewrite.workspace_lock import WRITER_LOCK, claim_folder

# transformers' Trainer writes a checkpoint's trainer_state.json after its weights, optimizer and
# RNG states: a checkpoint without a readable one was cut short (a kill during the save)
COMPLETE_MARKER = "trainer_state.json"


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def launch_key(processes: int, config_file: str | None) -> dict:
    """What of `launch` a checkpoint depends on: the process count and the accelerate config
    (a DeepSpeed config lays the optimizer state out its own way)."""
    config = (hashlib.sha256(Path(config_file).read_bytes()).hexdigest()
              if config_file is not None else None)
    return {"processes": processes, "config_file": config_file, "config_sha256": config}


def _is_complete(checkpoint: Path) -> bool:
    try:
        json.loads((checkpoint / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return True


def _broken(checkpoint: Path) -> str | None:
    """Why a complete checkpoint's weights cannot be read (truncated, corrupt header), or None
    (also for a layout without top-level safetensors files, which this check does not read)."""
    if not any(checkpoint.glob("*.safetensors")):
        return None
    try:
        check_weights(checkpoint, values=False)
    except IntegrityError as exc:
        return str(exc)
    return None


def _newest_first(path: Path) -> list[Path]:
    checkpoints = [p for p in path.glob("checkpoint-*") if re.fullmatch(r"checkpoint-\d+", p.name)]
    return sorted(checkpoints, key=lambda p: int(p.name.split("-")[1]), reverse=True)


def _same_inputs(path: Path, key: str) -> bool:
    stamp = path / "fingerprint.txt"
    try:
        return stamp.read_text().strip() == key
    except OSError:  # absent, or being replaced by the main process
        return False


def prepare_checkpoint_dir(path: Path, key: str, owner: bool = True) -> str | None:
    """The checkpoint to resume from: the newest complete one in `path`, if its checkpoints were
    made with the same inputs (`key`). Half-written checkpoints are deleted (and named); a folder
    from other inputs is emptied, so two different runs never mix. None: start from scratch.
    Under several processes only the main one (`owner`) deletes or creates anything; the others
    get the same answer (the newest complete checkpoint is the same for both). The main one is
    the folder's one writer (workspace_lock.claim_folder: a second one, alive, is refused)."""
    if not owner:
        if not _same_inputs(path, key):
            return None
        complete = [p for p in _newest_first(path) if _is_complete(p) and not _broken(p)]
        return str(complete[0]) if complete else None
    path.mkdir(parents=True, exist_ok=True)
    claim_folder(path)
    if _same_inputs(path, key):
        checkpoints = _newest_first(path)
        for checkpoint in checkpoints:
            if _is_complete(checkpoint):
                if reason := _broken(checkpoint):
                    aside = checkpoint.with_name(checkpoint.name + ".broken")
                    shutil.rmtree(aside, ignore_errors=True)
                    checkpoint.rename(aside)
                    print(f"{reason}; set aside as {aside}, resuming from an earlier checkpoint")
                    continue
                print(f"resuming from {checkpoint}")
                return str(checkpoint)
            print(f"{checkpoint}: cut short while saving (no readable {COMPLETE_MARKER}); "
                  "deleted")
            shutil.rmtree(checkpoint)
        if checkpoints:
            print(f"{path}: no complete checkpoint left; training from the start")
            return None
    for entry in path.iterdir():  # all but this writer's lock
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name != WRITER_LOCK:
            entry.unlink()
    (path / "fingerprint.txt").write_text(key + "\n")
    return None
