"""Saving and loading the rewriter's LoRA adapter, tied to the base model it was trained on."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from rlrewrite.errors import PipelineError
from rlrewrite.integrity import IntegrityError, check_weights

FINGERPRINT_FILE = "base_model_fingerprint.json"


class AdapterError(PipelineError, RuntimeError):
    """The adapter folder is missing or does not belong to the base model."""


def base_fingerprint(model_dir: Path) -> dict:
    """Identifies a base model folder: its config and the size of its weight files."""
    model_dir = Path(model_dir)
    weights = sorted(model_dir.glob("*.safetensors"))
    return {"config_sha256": hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest(),
            "weight_bytes": sum(p.stat().st_size for p in weights)}


def save_rewriter(peft_model, tokenizer, adapter_dir: Path, model_dir: Path) -> None:
    peft_model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    (Path(adapter_dir) / FINGERPRINT_FILE).write_text(json.dumps(base_fingerprint(model_dir)) + "\n")


def check_adapter(adapter_dir: Path, model_dir: Path) -> None:
    """Stops with an AdapterError unless `adapter_dir` holds an adapter trained on `model_dir`."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise AdapterError(f"{adapter_dir}: no LoRA adapter (adapter_config.json); run "
                           "`dvc repro rollout-and-train-rewriter` first")
    try:
        check_weights(adapter_dir)  # truncated, corrupt or NaN-holding adapter weights
    except IntegrityError as exc:
        raise AdapterError(str(exc)) from None
    stamp = adapter_dir / FINGERPRINT_FILE
    if stamp.is_file() and json.loads(stamp.read_text()) != base_fingerprint(model_dir):
        raise AdapterError(f"{adapter_dir} was trained on a different base model than {model_dir} "
                           "(config or weights differ); retrain the rewriter")
    if missing := missing_adapter_tensors(adapter_dir, model_dir):
        raise AdapterError(f"{adapter_dir}: adapter file is incomplete: {len(missing)} tensor(s) "
                           f"missing, e.g. {', '.join(missing[:3])}")


def missing_adapter_tensors(adapter_dir: Path, model_dir: Path) -> list[str]:
    """The adapter tensors peft would create on the base model that the adapter file lacks
    (loaded, they would run as π0 while labelled as the rewriter). Checked here, not only when
    peft loads the adapter: vLLM serving it (`vllm.rewriter_lora: served`) never warns. peft
    builds the adapter on the base model's architecture on the meta device: no weights load."""
    from accelerate import init_empty_weights
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        return ["adapter_model.safetensors"]
    try:
        config = LoraConfig.from_pretrained(str(adapter_dir))
    except (OSError, ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise AdapterError(f"{adapter_dir / 'adapter_config.json'}: not a readable LoRA config: "
                           f"{str(exc).splitlines()[0]}") from None
    with init_empty_weights():
        base = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
        expected = get_peft_model_state_dict(get_peft_model(base, config))
    with safe_open(weights, "pt") as handle:
        present = set(handle.keys())
    return sorted(set(expected) - present)


def load_rewriter(base_model, adapter_dir: Path, model_dir: Path):
    """π0 + the rewriter adapter (a PeftModel: `disable_adapter()` gives π0 back)."""
    from peft import PeftModel

    check_adapter(adapter_dir, model_dir)
    try:
        with warnings.catch_warnings():
            # peft only warns when the file lacks some of the adapter's tensors; the model would
            # then run partly as π0 while labelled as the rewriter
            warnings.filterwarnings("error", message="Found missing adapter keys")
            return PeftModel.from_pretrained(base_model, adapter_dir)
    except UserWarning as exc:
        raise AdapterError(f"{adapter_dir}: adapter file is incomplete: "
                           f"{str(exc)[:300]}") from None
    except (RuntimeError, ValueError, KeyError) as exc:
        raise AdapterError(f"{adapter_dir}: adapter does not fit the base model in {model_dir}: "
                           f"{str(exc).splitlines()[0]}") from None
