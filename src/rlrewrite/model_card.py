"""Model cards for the models the pipeline writes (models/sft/README.md, models/rewriter/README.md):
what a model is, what it was trained on and how, and what the stage measured, in the Hugging Face
card format (YAML metadata, then Markdown)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

PAPER = "arXiv:2602.11220"
LICENCE_NOTE = ("The weights derive from the base model and keep its licence (SmolLM2-135M-Instruct: "
                "Apache-2.0); this repository's code is MIT.")


def write_card(folder: Path, *, title: str, summary: str, base_model: str, data: str,
               params: dict, metrics: dict, tags: list[str]) -> Path:
    meta = {"base_model": base_model, "library_name": "transformers", "tags": tags,
            "license": "other", "license_name": "the base model's licence"}
    body = [f"# {title}", "", summary, "",
            f"- Base model: `{base_model}`", f"- Training data: {data}",
            f"- Method: {PAPER} reimplementation (docs/method.md in the repository)",
            f"- Licence: {LICENCE_NOTE}", "", "## Parameters", "", "```json",
            json.dumps(params, indent=1, sort_keys=True, default=str), "```", "",
            "## Metrics the stage recorded", "", "```json",
            json.dumps(metrics, indent=1, sort_keys=True, default=str), "```", ""]
    path = Path(folder) / "README.md"
    path.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n" + "\n".join(body),
                    encoding="utf-8")
    return path
