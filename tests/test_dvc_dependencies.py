"""dvc.yaml names every module a stage imports: a change to code a stage runs must rerun it.

The import closure of each stage script is computed statically (ast) over our own package; a
stage that imports a module of `src/rlrewrite` without listing it (or a folder above it) in its
`deps` can report "up to date" over stale results.
"""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "rlrewrite"


def _module_file(name: str) -> Path | None:
    if not name.startswith("rlrewrite"):
        return None
    parts = name.split(".")
    path = SRC.joinpath(*parts)
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _imports(path: Path) -> set[Path]:
    """Our modules that `path` imports (absolute `rlrewrite.x` or relative `.x`), anywhere in it."""
    tree = ast.parse(path.read_text())
    found = set()
    package = "rlrewrite" if path.parent == PACKAGE else None
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and package:
                base = f"{package}.{base}" if base else package
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            module = _module_file(name)
            if module is not None and module.name != "__init__.py":
                found.add(module)
    return found


def import_closure(script: Path) -> set[Path]:
    seen, todo = set(), [script]
    while todo:
        current = todo.pop()
        for module in _imports(current) - seen:
            seen.add(module)
            todo.append(module)
    return seen


def _stages():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return [(name, stage) for name, stage in stages.items()]


@pytest.mark.parametrize("name,stage", _stages(), ids=[n for n, _ in _stages()])
def test_stage_deps_cover_the_scripts_import_closure(name, stage):
    script = REPO / stage["cmd"].split()[-1]
    deps = [REPO / d for d in stage["deps"]]
    assert script in deps, f"{name}: its script {script.name} is not a dependency"

    def covered(module: Path) -> bool:
        return any(module == d or d in module.parents for d in deps)

    missing = sorted(str(m.relative_to(REPO)) for m in import_closure(script) if not covered(m))
    assert not missing, f"dvc.yaml stage '{name}' imports but does not depend on: {missing}"


def test_closure_finds_relative_and_lazy_imports():
    """The checker itself: the rewriter stage reaches gate.py through a relative import and
    vllm_engine.py through an import inside a function."""
    closure = import_closure(SRC / "train_rewriter.py")
    assert PACKAGE / "gate.py" in closure
    assert PACKAGE / "vllm_engine.py" in closure
