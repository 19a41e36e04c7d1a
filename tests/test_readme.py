"""README is the hand-written entry point: short, and never a generated file's target."""

import re

import pytest
import yaml
from conftest import REPO

from rlrewrite.markers import fill_markers
from rlrewrite.model_card import write_card

MAX_LINES = 150


def test_readme_stays_short_and_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= MAX_LINES
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        if not link.startswith("http"):
            assert (REPO / link).exists(), link


def test_no_code_path_writes_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- x:start -->\n<!-- x:end -->\n")
    with pytest.raises(SystemExit, match="README is written by hand"):
        fill_markers(readme, "x", "table\n")
    sources = [*REPO.glob("src/**/*.py"), *REPO.glob("perf/*.py"), REPO / "Makefile"]
    assert not [p for p in sources if "--readme" in p.read_text()]


def test_model_card_has_hub_metadata_and_the_run(tmp_path):
    path = write_card(tmp_path, title="t", summary="s", base_model="embedded:SmolLM2",
                      data="data/x.jsonl", params={"lr": 1e-4}, metrics={"loss": 0.5},
                      tags=["sft"])
    text = path.read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["base_model"] == "embedded:SmolLM2" and meta["tags"] == ["sft"]
    assert '"lr": 0.0001' in text and '"loss": 0.5' in text and "Apache-2.0" in text
