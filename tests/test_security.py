"""Security basics over the project's own code (src/ and perf/): no remote code, no shell,
no pickle. Loading weights as safetensors only is checked where models come in: the base model
(validation.check_model, data/base_model.py; a pickle-only folder is a row of test_bad_inputs)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FILES = sorted([*(REPO / "src").rglob("*.py"), *(REPO / "perf").rglob("*.py")])
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal"}


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, {k.arg: k.value for k in node.keywords if k.arg}


def dotted(func: ast.expr) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def findings(source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [f"line {node.lineno}: imports {n}" for n in names
                  if n.split(".")[0] in UNSAFE_MODULES]
    for call, kwargs in calls(tree):
        where = f"line {call.lineno}: {dotted(call.func)}"
        if "shell" in kwargs and not (isinstance(kwargs["shell"], ast.Constant)
                                      and kwargs["shell"].value is False):
            found.append(f"{where} with shell=")
        if "trust_remote_code" in kwargs and not (
                isinstance(kwargs["trust_remote_code"], ast.Constant)
                and kwargs["trust_remote_code"].value is False):
            found.append(f"{where} with trust_remote_code other than False")
        if dotted(call.func).endswith("torch.load") and not (
                isinstance(kwargs.get("weights_only"), ast.Constant)
                and kwargs["weights_only"].value is True):
            found.append(f"{where} without weights_only=True")
        bare = isinstance(call.func, ast.Name)  # `eval(...)`, not a model's `.eval()`
        if dotted(call.func) in ("os.system", "os.popen") or (bare and call.func.id in ("eval", "exec")):
            found.append(where)
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_remote_code_shell_or_pickle(path):
    assert findings(path.read_text()) == []


def test_the_check_finds_what_it_forbids():
    bad = ("import pickle\nimport subprocess, torch\nsubprocess.run('ls', shell=True)\n"
           "torch.load('x.bin')\nAutoModel.from_pretrained('m', trust_remote_code=True)\n"
           "os.system('rm')\neval('1')\n")
    assert len(findings(bad)) == 6
    good = ("subprocess.run(['ls'], shell=False)\ntorch.load('x', weights_only=True)\n"
            "AutoModel.from_pretrained('m', trust_remote_code=False)\nmodel.to('cpu').eval()\n")
    assert findings(good) == []
