"""Recipes: partial params.yaml files (recipes/*.yaml) applied onto params.yaml in one command.

    python -m rlrewrite.recipes recipes/gpu-single.yaml      # or: make recipe RECIPE=gpu-single

A recipe names sections and keys exactly as params.yaml does; sections merge key by key, any
other value (a list, `data.options`, `benchmarks.standard`) replaces the old one. An unknown key
(or an old name: the error names the new one) stops with an error naming the recipe and the key,
and the result is validated by the strict schema (config.py) before params.yaml is rewritten,
comments kept (ruamel round-trip, as DVC's own `-S`).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from rlrewrite.config import RENAMED, Params, ParamsError, parse_params, parse_yaml

RECIPES = Path("recipes")


def load_recipe(path: Path) -> dict:
    try:
        overlay = parse_yaml(Path(path).read_text(), path)
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such recipe (recipes: "
                          f"{sorted(p.stem for p in RECIPES.glob('*.yaml'))})") from None
    if not isinstance(overlay, dict):
        raise ParamsError(f"{path}: expected a mapping of params.yaml sections")
    return overlay


def merge(base, overlay: dict, model: type[BaseModel], where: str, prefix: str = "") -> None:
    """Apply `overlay` onto `base` (a mapping, changed in place) along the schema `model`."""
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        field = model.model_fields.get(key)
        if field is None and dotted in RENAMED:
            raise ParamsError(f"{where}: key '{dotted}' was renamed to '{RENAMED[dotted]}'")
        if field is None:
            raise ParamsError(f"{where}: unknown key '{dotted}'")
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            if not isinstance(value, dict):
                raise ParamsError(f"{where}: '{dotted}' is a section: give it a mapping")
            if key not in base:  # the strict schema below says what it still lacks
                base[key] = CommentedMap()
            merge(base[key], value, section, where, f"{dotted}.")
        elif base.get(key) != value:  # untouched values keep their formatting and comments
            base[key] = _flow(value)


def _flow(value):
    """Lists and mappings written inline, as params.yaml writes them."""
    if isinstance(value, dict):
        value = CommentedMap(value)
    elif isinstance(value, list):
        value = CommentedSeq(value)
    else:
        return value
    value.fa.set_flow_style()
    return value


def apply_recipe(recipe: Path, params_file: Path) -> str:
    """params.yaml's text with the recipe applied, validated; comments kept."""
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap a line of params.yaml
    rt.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    document = rt.load(Path(params_file).read_text())
    merge(document, load_recipe(recipe), Params, str(recipe))
    out = io.StringIO()
    rt.dump(document, out)
    text = out.getvalue()
    parse_params(text, f"{recipe} applied to {params_file}")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="recipes/NAME.yaml, or NAME")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    recipe = Path(args.recipe)
    if not recipe.suffix:  # NAME, or a path without its .yaml
        recipe = RECIPES / f"{recipe}.yaml" if recipe.parent == Path() else recipe.with_suffix(".yaml")
    try:
        Path(args.params).write_text(apply_recipe(recipe, Path(args.params)))
    except ParamsError as exc:
        sys.exit(f"recipe: {exc}")
    print(f"{args.params}: {recipe} applied")


if __name__ == "__main__":
    main()
