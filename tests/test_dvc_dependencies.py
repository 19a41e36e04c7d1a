"""dvc.yaml names exactly the modules a stage imports: a change to code a stage runs must rerun it,
and a change to code it does not run must not.

The import closure of each stage script is computed statically (ast) over our own package; a
stage that imports a module of `src/rlrewrite` without listing it (or a folder above it) in its
`deps` can report "up to date" over stale results. The params side is enforced at run time
(stage_params.py: a stage can only read the keys its dvc.yaml entry lists; test_stage_params.py).
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


def _code_roots(script: Path, deps: list[Path]) -> list[Path]:
    """The stage script, plus the Python files inside folders it depends on (lm-eval task
    folders: lm-eval imports their `!function` modules, which import our package)."""
    return [script] + [f for d in deps if d.is_dir() and SRC in d.parents for f in d.rglob("*.py")]


@pytest.mark.parametrize("name,stage", _stages(), ids=[n for n, _ in _stages()])
def test_stage_code_deps_are_exactly_the_scripts_import_closure(name, stage):
    script = REPO / stage["cmd"].split()[-1]
    deps = [REPO / d for d in stage["deps"]]
    assert script in deps, f"{name}: its script {script.name} is not a dependency"
    closure = set().union(*(import_closure(root) for root in _code_roots(script, deps)))

    def covered(module: Path) -> bool:
        return any(module == d or d in module.parents for d in deps)

    missing = sorted(str(m.relative_to(REPO)) for m in closure if not covered(m))
    assert not missing, f"dvc.yaml stage '{name}' imports but does not depend on: {missing}"
    listed = {d for d in deps if d.suffix == ".py" and PACKAGE in d.parents}
    extra = sorted(str(m.relative_to(REPO)) for m in listed - closure)
    assert not extra, f"dvc.yaml stage '{name}' depends on modules it never imports: {extra}"


def test_closure_finds_relative_and_lazy_imports():
    """The checker itself: the rewriter stage reaches the gate through the GRPO reward and the
    vLLM engine through an import inside a function."""
    closure = import_closure(SRC / "train_rewriter.py")
    assert PACKAGE / "reward" / "gate.py" in closure
    assert PACKAGE / "engines" / "vllm_engine.py" in closure


def test_lm_eval_task_code_is_followed():
    """evaluate's task folder holds math_equivalence.py, which imports our answer checker."""
    stage = dict(_stages())["evaluate"]
    deps = [REPO / d for d in stage["deps"]]
    roots = _code_roots(REPO / "src/evaluate.py", deps)
    assert PACKAGE / "evaluation" / "tasks" / "math_equivalence.py" in roots
    assert PACKAGE / "reward" / "answers.py" in import_closure(roots[-1])


def test_only_the_grpo_stage_imports_the_grpo_trainer_code():
    grpo = {PACKAGE / "train" / "grpo.py", PACKAGE / "reward" / "grpo_reward.py"}
    for name, stage in _stages():
        script = REPO / stage["cmd"].split()[-1]
        if name != "rollout-and-train-rewriter":
            assert not grpo & import_closure(script), f"stage '{name}' imports GRPO trainer code"


def test_no_cached_stage_output_is_tracked_by_git():
    """DVC refuses to save an output git already tracks (OutputAlreadyTrackedError), which the
    tests' copies of the repository, holding only sources, would not show."""
    import subprocess

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    cached = []
    for stage in stages.values():
        for entry in stage.get("outs", []):
            path, opts = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            if (opts or {}).get("cache", True):
                cached.append(path)
    tracked = subprocess.run(["git", "ls-files", "--", *cached], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    assert cached and tracked == []
