import pytest
import torch

from rlrewrite.config import EMBEDDED_MODEL
from rlrewrite.data.base_model import materialise_base_model


@pytest.mark.slow
def test_embedded_conversion_round_trip(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlrewrite.data.base_model import embedded_gguf

    info = materialise_base_model(EMBEDDED_MODEL, tmp_path)
    assert info["parameters"] > 100_000_000
    assert (tmp_path / "model.safetensors").exists()

    folder, filename = embedded_gguf(EMBEDDED_MODEL)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename).eval()
    saved = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer.eos_token == "<|im_end|>" == tokenizer.pad_token
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2+2?"}],
                                           add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        expected = gguf_model(**prompt).logits
        actual = saved(**prompt).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_local_folder_is_saved_as_is(tmp_path, tiny_model_dir):
    out = tmp_path / "base"
    info = materialise_base_model(str(tiny_model_dir), out)
    assert info["dtype"] == "float32"
    assert (out / "config.json").exists() and (out / "chat_template.jinja").exists()


def test_unknown_embedded_name(tmp_path):
    with pytest.raises(ValueError, match="unknown embedded model"):
        materialise_base_model("embedded:GPT-9", tmp_path)
