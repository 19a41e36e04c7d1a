"""Recipes (recipes/*.yaml) apply onto params.yaml and validate under the strict schema."""

from pathlib import Path

import pytest

from rlrewrite.config import ParamsError, load_params
from rlrewrite.recipes import apply_recipe, main

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


def test_the_three_recipes_are_there():
    assert {p.stem for p in RECIPES} == {"cpu-default", "gpu-single", "paper"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_validates_on_the_repository_params(recipe, tmp_path):
    out = tmp_path / "params.yaml"
    out.write_text(apply_recipe(recipe, REPO / "params.yaml"))
    assert load_params(out).model.name
    assert "# The training seed" in out.read_text()  # params.yaml's comments survive


def test_cpu_default_is_what_params_yaml_holds_to_the_byte():
    text = (REPO / "params.yaml").read_text()
    assert apply_recipe(REPO / "recipes/cpu-default.yaml", REPO / "params.yaml") == text


def test_paper_recipe_is_the_papers_rewriter(tmp_path):
    out = tmp_path / "params.yaml"
    out.write_text(apply_recipe(REPO / "recipes/paper.yaml", REPO / "params.yaml"))
    params = load_params(out)
    rw = params.rewriter
    assert (rw.lora.rank, rw.lora.alpha, rw.num_generations, rw.learning_rate, rw.temperature,
            rw.beta, params.rewrite.max_new_tokens, rw.max_steps, params.gate.judge) == \
        (64, 32, 5, 3e-6, 1.0, 0.001, 4096, 120, True)
    assert rw.questions_per_device * rw.gradient_accumulation_steps * 7 == 504


@pytest.mark.parametrize("recipe", ["gpu-single", "paper"])
def test_a_gpu_recipe_then_the_cpu_default_round_trips(recipe, tmp_path):
    out = tmp_path / "params.yaml"
    out.write_text((REPO / "params.yaml").read_text())
    main([str(REPO / f"recipes/{recipe}.yaml"), "--params", str(out)])
    assert load_params(out).model.name != load_params(REPO / "params.yaml").model.name
    main([str(REPO / "recipes/cpu-default.yaml"), "--params", str(out)])
    assert load_params(out) == load_params(REPO / "params.yaml")


@pytest.mark.parametrize("text, message", [
    ("rewriter:\n  learnign_rate: 1.0\n", r"bad.yaml: unknown key 'rewriter.learnign_rate'"),
    ("sft: 3\n", r"bad.yaml: 'sft' is a section"),
    ("rewriter:\n  num_generations: 1\n",
     r"bad.yaml applied to .*params.yaml: key 'rewriter.num_generations'"),
    ("sft:\n  precision: bf16\n", r"bad.yaml: key 'sft.precision' was renamed to 'precision'"),
    ("- a\n", r"bad.yaml: expected a mapping"),
])
def test_a_bad_recipe_names_itself_and_the_key(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ParamsError, match=message):
        apply_recipe(tmp_path / "bad.yaml", REPO / "params.yaml")


def test_a_section_params_yaml_lacks_is_named_not_a_crash(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text().replace(
        "launch:\n  processes: 1\n  config_file: null\n", ""))
    (tmp_path / "two.yaml").write_text("launch:\n  processes: 2\n")
    with pytest.raises(ParamsError, match=r"two.yaml applied to .*: missing key "
                                          r"'launch.config_file'"):
        apply_recipe(tmp_path / "two.yaml", params)


def test_a_recipe_path_without_its_suffix(tmp_path, monkeypatch):
    out = tmp_path / "params.yaml"
    out.write_text((REPO / "params.yaml").read_text())
    monkeypatch.chdir(REPO)
    main(["recipes/gpu-single", "--params", str(out)])  # not recipes/recipes/gpu-single.yaml
    assert load_params(out).model.name != load_params(REPO / "params.yaml").model.name
