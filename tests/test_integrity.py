"""Weights checked before use: truncation, a corrupt header and NaN weights are named; a broken
newest checkpoint is set aside and the one before it resumed."""

import json

import pytest
import torch
from safetensors.torch import save_file

from rlrewrite.integrity import IntegrityError, check_structure, check_weights
from rlrewrite.train.checkpoints import prepare_checkpoint_dir


def weights(folder, value=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    save_file({"a": torch.full((64, 64), value), "b": torch.arange(10)}, str(path))
    return path


def test_a_sound_file_passes_and_truncation_is_named(tmp_path):
    path = weights(tmp_path / "m")
    assert set(check_structure(path)) >= {"a", "b"}
    check_weights(tmp_path / "m")
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(IntegrityError, match=r"m/model.safetensors: .* bytes, its header declares .* \(truncated\)"):
        check_weights(tmp_path / "m")
    path.write_bytes(data[:5])
    with pytest.raises(IntegrityError, match="no safetensors header"):
        check_weights(tmp_path / "m")
    path.write_bytes(b"\xff" * 16 + data[16:])
    with pytest.raises(IntegrityError, match="model.safetensors: truncated or corrupt"):
        check_weights(tmp_path / "m")
    with pytest.raises(IntegrityError, match="no .safetensors weights"):
        check_weights(tmp_path / "empty")


def test_bytes_of_0xff_inside_the_weights_are_nan_and_named(tmp_path):
    path = weights(tmp_path / "m")
    data = bytearray(path.read_bytes())
    data[-2000:-1000] = b"\xff" * 1000  # inside tensor a: float32 0xffffffff is NaN
    path.write_bytes(bytes(data))
    check_weights(tmp_path / "m", values=False)  # the structure is intact...
    with pytest.raises(IntegrityError, match="tensor a holds 250 NaN/Inf values"):
        check_weights(tmp_path / "m")  # ...the values are not


def test_a_broken_newest_checkpoint_is_set_aside(tmp_path, capsys):
    folder = tmp_path / "ckpt"
    assert prepare_checkpoint_dir(folder, "k") is None
    for step in (5, 10):
        weights(folder / f"checkpoint-{step}")
        (folder / f"checkpoint-{step}/trainer_state.json").write_text(json.dumps({"step": step}))
    newest = folder / "checkpoint-10/model.safetensors"
    newest.write_bytes(newest.read_bytes()[:-64])
    assert prepare_checkpoint_dir(folder, "k", owner=False) == str(folder / "checkpoint-5")
    assert prepare_checkpoint_dir(folder, "k") == str(folder / "checkpoint-5")
    assert (folder / "checkpoint-10.broken").is_dir() and not (folder / "checkpoint-10").exists()
    assert "checkpoint-10/model.safetensors" in capsys.readouterr().out
