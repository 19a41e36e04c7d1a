"""docs/params.md is generated from the schema: every key documented, the file current."""

import pytest
from conftest import REPO

from rlrewrite.config import Params, parse_yaml
from rlrewrite.params_doc import documented_keys, is_section, main, render


def _all_fields(model, prefix=""):
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}", field
        if is_section(field.annotation):
            yield from _all_fields(field.annotation, f"{prefix}{name}.")


@pytest.mark.parametrize("key, field", list(_all_fields(Params)), ids=lambda v: str(v)[:40])
def test_every_schema_field_has_a_description(key, field):
    assert field.description and field.description.strip(), key


def test_the_committed_doc_is_what_the_generator_writes():
    assert (REPO / "docs/params.md").read_text() == render((REPO / "params.yaml").read_text()), \
        "docs/params.md is stale: run `make params-doc`"


def _leaves(raw: dict, prefix=""):
    for key, value in raw.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_key_of_params_yaml_is_in_the_doc():
    doc = (REPO / "docs/params.md").read_text()
    documented = set(documented_keys())
    raw = parse_yaml((REPO / "params.yaml").read_text(), "params.yaml")
    for leaf in _leaves(raw):
        parts = leaf.split(".")
        # the key itself, or the mapping-valued key it is an entry of (data.options.max_animals)
        keys = [k for k in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                if k in documented]
        assert keys and f"| `{keys[0]}` |" in doc, f"{leaf}: in params.yaml, not in docs/params.md"


def test_check_fails_on_a_stale_doc_and_passes_on_a_fresh_one(tmp_path, capsys):
    params = REPO / "params.yaml"
    out = tmp_path / "params.md"
    out.write_text("old\n")
    with pytest.raises(SystemExit, match="params.md is stale"):
        main(["--check", "--params", str(params), "--out", str(out)])
    main(["--params", str(params), "--out", str(out)])
    main(["--check", "--params", str(params), "--out", str(out)])
    assert "up to date" in capsys.readouterr().out
