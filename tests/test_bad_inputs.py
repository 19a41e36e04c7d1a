"""Bad input never costs an output: each row breaks one param or input of a repository whose
`prepare` has run, runs `dvc repro -f prepare` (DVC deletes a stage's outputs before running it),
and checks the error the user sees names the file, line or key, and that every output and
metrics file is still there, unchanged. The `validate` stage is what stops them first (DVC itself
stops a params.yaml it cannot parse)."""

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import copy_repo
from helpers import dvc

from rlrewrite.jsonl import DataError
from rlrewrite.validation import check_model

DATA = [{"id": f"q{i}", "question": f"Tom has {i} apples and buys {i + 2}. How many now?",
         "solution": f"{i} + {i + 2} = {2 * i + 2}.\n#### {2 * i + 2}"} for i in range(40)]
OUTPUTS = ["models/base", "data/prepared", "data/benchmarks", "data/validated.json",
           "metrics/prepare.json"]


def digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(path.parent).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def write_lines(path: Path, lines: list[str | bytes]) -> None:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))


@pytest.fixture(scope="module")
def prepared_repo(tmp_path_factory, tiny_model_dir) -> Path:
    """A repository on a local JSONL source and the tiny model, `prepare` done."""
    repo = copy_repo(tmp_path_factory.mktemp("bad-inputs") / "repo")
    write_lines(repo / "data/sources/source.jsonl", [json.dumps(r) for r in DATA])
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["model"]["name"] = str(tiny_model_dir)
    params["data"].update(source="jsonl", name="data/sources/source.jsonl", options={},
                          sizes={"sft": 6, "rl": 4, "test": 3})
    params["benchmarks"].update(quiz_max_items=8, standard={"piqa": 3})
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(repo, "repro", "prepare")
    assert "Running stage 'validate'" in out and "Running stage 'prepare'" in out
    return repo


def params_edit(change):
    def apply(repo: Path) -> None:
        params = yaml.safe_load((repo / "params.yaml").read_text())
        change(params)
        (repo / "params.yaml").write_text(yaml.safe_dump(params))
    return apply


def source_lines(lines):
    return lambda repo: write_lines(repo / "data/sources/source.jsonl", lines)


def model_folder(make):
    """Point model.name at a folder `make(folder)` builds."""
    def apply(repo: Path) -> None:
        folder = repo.parent / "other-model"
        folder.mkdir()
        make(folder)
        params_edit(lambda p: p["model"].update(name=str(folder)))(repo)
    return apply


GOOD = [json.dumps(r) for r in DATA]
CASES = {
    # params.yaml
    "yaml syntax error": (lambda repo: (repo / "params.yaml").write_text("seed: [0\n"),
                          r"'params.yaml', YAML file structure is corrupted.*line: 2"),  # DVC
    "unknown key": (params_edit(lambda p: p["rewriter"].update(learnign_rate=1e-4)),
                    r"unknown key 'rewriter.learnign_rate'"),
    "missing key": (params_edit(lambda p: p["sft"].pop("epochs")), r"missing key 'sft.epochs'"),
    "wrong type": (params_edit(lambda p: p["data"]["sizes"].update(sft="many")),
                   r"key 'data.sizes.sft'"),
    "size 0": (params_edit(lambda p: p["data"]["sizes"].update(test=0)),
               r"key 'data.sizes.test': must be at least 1 \(got 0\)"),
    "num_generations 1": (params_edit(lambda p: p["rewriter"].update(num_generations=1)),
                          r"key 'rewriter.num_generations': must be at least 2"),
    "negative lambda": (params_edit(lambda p: p["rewriter"].update(lambda_dist=-0.35)),
                        r"key 'rewriter.lambda_dist': must be at least 0"),
    "temperature 0 in GRPO": (params_edit(lambda p: p["rewriter"].update(temperature=0.0)),
                              r"key 'rewriter.temperature': must be greater than 0"),
    "negative learning rate": (params_edit(lambda p: p["sft"].update(learning_rate=-1e-5)),
                               r"key 'sft.learning_rate': must be greater than 0"),
    "LoRA rank 0": (params_edit(lambda p: p["rewriter"]["lora"].update(rank=0)),
                    r"key 'rewriter.lora.rank': must be at least 1"),
    "attempts > 1 with greedy": (
        params_edit(lambda p: p["rewrite"].update(attempts=3, temperature=0.0)),
        r"key 'rewrite'.*attempts > 1 needs temperature > 0"),
    "quiz_max_items 0": (params_edit(lambda p: p["benchmarks"].update(quiz_max_items=0)),
                         r"key 'benchmarks.quiz_max_items': must be at least 1"),
    "no benchmark at all": (
        params_edit(lambda p: p["benchmarks"].update(standard={}, quiz_tasks=[],
                                                     lm_eval_tasks=[])),
        r"benchmarks: no general task to measure forgetting on"),
    "unknown quiz task": (params_edit(lambda p: p["benchmarks"].update(quiz_tasks=["capitalz"])),
                          r"benchmarks.quiz_tasks: unknown task\(s\) \['capitalz'\]"),
    "unknown standard benchmark": (
        params_edit(lambda p: p["benchmarks"].update(standard={"mmlu": 5})),
        r"benchmarks.standard: unknown benchmark\(s\) \['mmlu'\]"),
    "unknown lm-eval task": (
        params_edit(lambda p: p["benchmarks"].update(lm_eval_tasks=["mmlu_klingon"])),
        r"benchmarks.lm_eval_tasks: lm-eval does not know task\(s\) \['mmlu_klingon'\]"),
    "prompt lacks a placeholder": (
        lambda repo: [(repo / "data/prompts/short.txt").write_text("Rewrite: {question}\n"),
                      params_edit(lambda p: p["rewriter"].update(
                          prompt_file="data/prompts/short.txt"))(repo)],
        r"rewriter.prompt_file: data/prompts/short.txt: template lacks placeholder\(s\) "
        r"\{solution\}"),
    "lora target module the model lacks": (
        params_edit(lambda p: p["sft"]["lora"].update(target_modules=["q_proj", "qkv_proj"])),
        r"sft.lora.target_modules: \['qkv_proj'\] are not linear layers of .*q_proj"),
    "model is a pipeline output": (
        params_edit(lambda p: p["model"].update(name="models/base")),
        r"model.name: 'models/base' lies in 'models/base', an output of this pipeline"),
    "launch config file missing": (
        params_edit(lambda p: p["launch"].update(config_file="accelerate/nope.yaml")),
        r"launch.config_file: 'accelerate/nope.yaml' does not exist"),
    "missing prompt file": (
        params_edit(lambda p: p["rewriter"].update(prompt_file="data/prompts/nope.txt")),
        r"rewriter.prompt_file: 'data/prompts/nope.txt' does not exist"),
    # the JSONL data source
    "source missing": (params_edit(lambda p: p["data"].update(name="data/sources/nope.jsonl")),
                       r"JSONL file 'data/sources/nope.jsonl' does not exist"),
    "source empty": (source_lines([]), r"data.sizes.test: asks for 3 records but the source "
                                       r"has only 0"),
    "source too small": (source_lines(GOOD[:8]), r"data.sizes: sft\+rl need 10 training "
                                                 r"records but the source has only 5"),
    "malformed JSON": (source_lines(GOOD[:1] + ['{"id": "x", "question": '] + GOOD[1:]),
                       r"data/sources/source.jsonl:2: not valid JSON"),
    "not UTF-8": (source_lines(GOOD[:2] + [b'{"id": "x", "question": "caf\xe9"}'] + GOOD[2:]),
                  r"data/sources/source.jsonl:3: not UTF-8 text"),
    "no question field": (
        source_lines(GOOD[:3] + [json.dumps({"id": "x", "solution": "#### 4"})] + GOOD[3:]),
        r"data/sources/source.jsonl:4: no field 'question' \(data.fields.question\)"),
    "no extractable answer": (
        source_lines(GOOD[:4] + [json.dumps({"id": "x", "question": "Why?",
                                             "solution": "Because."})] + GOOD[4:]),
        r"data/sources/source.jsonl:5: cannot extract a final answer from field 'solution'"),
    "duplicate ids": (source_lines(GOOD + [GOOD[0]]),
                      r"data/sources/source.jsonl:41: duplicate id 'q0' \(first on line 1\)"),
    # the model
    "model path missing": (params_edit(lambda p: p["model"].update(name="/nonexistent/model")),
                           r"model.name: '/nonexistent/model' is not a folder"),
    "model path not a model": (model_folder(lambda f: (f / "README.md").write_text("hi")),
                               r"model.name: '.*other-model' has no config.json"),
    "pickle-only weights": (
        model_folder(lambda f: [(f / "config.json").write_text("{}"),
                                (f / "pytorch_model.bin").write_bytes(b"\x80\x04N.")]),
        r"has no .safetensors weights \(only \['pytorch_model.bin'\]: pickle files"),
    "model path with ~": (params_edit(lambda p: p["model"].update(name="~/models/smol")),
                          r"model.name: '~/models/smol': write the folder's full path"),
    "invalid hub id": (params_edit(lambda p: p["model"].update(name="not a//hub id")),
                       r"model.name: 'not a//hub id' is neither a local folder nor a hub id"),
    "hub id not cached, offline": (  # the tests run with HF_HUB_OFFLINE=1 (conftest)
        params_edit(lambda p: p["model"].update(name="rlrewrite-tests/no-such-model")),
        r"'rlrewrite-tests/no-such-model' is neither a local folder nor in the local Hugging "
        r"Face cache"),
    "local source outside data/sources": (
        params_edit(lambda p: p["data"].update(name="data/source.jsonl")),
        r"data.name: 'data/source.jsonl' must lie in data/sources/"),
    "local source reached through ..": (
        params_edit(lambda p: p["data"].update(name="data/sources/../source.jsonl")),
        r"data.name: 'data/sources/../source.jsonl' must lie in data/sources/"),
    "unknown embedded model": (
        params_edit(lambda p: p["model"].update(name="embedded:GPT-5")),
        r"model.name: unknown embedded model 'embedded:GPT-5'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_clearly_and_keeps_every_output(case, prepared_repo, tmp_path):
    break_it, message = CASES[case]
    repo = tmp_path / "repo"
    shutil.copytree(prepared_repo, repo, symlinks=True)
    before = {name: digest(repo / name) for name in OUTPUTS}
    break_it(repo)
    with pytest.raises(AssertionError) as failed:  # dvc() asserts a zero exit status
        dvc(repo, "repro", "-f", "prepare")
    assert "Running stage 'prepare'" not in str(failed.value)  # stopped before it
    assert "Traceback" not in str(failed.value)  # a message, not a crash that happens to name it
    assert re.search(message, str(failed.value), re.S), str(failed.value)
    assert {name: digest(repo / name) for name in OUTPUTS} == before


@pytest.mark.slow
def test_validate_digests_the_local_source_it_checked(prepared_repo):
    stamp = json.loads((prepared_repo / "data/validated.json").read_text())["inputs"]
    assert stamp["data"] == "data/sources/source.jsonl"
    assert stamp["sha256"] == hashlib.sha256((prepared_repo / "data/sources/source.jsonl")
                                             .read_bytes()).hexdigest()


@pytest.mark.slow
def test_an_edited_local_source_reruns_prepare_and_nothing_else_does(prepared_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(prepared_repo, repo, symlinks=True)
    unchanged = dvc(repo, "repro", "prepare")
    assert "Running stage 'validate'" in unchanged  # always runs: ~2 s
    assert "Running stage 'prepare'" not in unchanged
    write_lines(repo / "data/sources/source.jsonl", list(reversed(GOOD)))
    status = dvc(repo, "status", "prepare")
    assert "prepare:" in status and "modified:" in status and "data/sources" in status, status
    assert "Running stage 'prepare'" in dvc(repo, "repro", "prepare")


def test_a_model_folder_with_rewritten_weights_gets_a_new_stamp(tmp_path, tiny_model_dir):
    """A fine-tuned model of the same architecture has the same config and weight sizes."""
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    stamp = check_model(str(folder))
    assert check_model(str(folder)) == stamp
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes())  # same bytes, rewritten
    assert check_model(str(folder)) != stamp


def test_non_utf8_jsonl_names_file_and_line(tmp_path):
    from rlrewrite.jsonl import read_jsonl

    write_lines(tmp_path / "x.jsonl", ['{"a": 1}', b'{"a": "\xff"}'])
    with pytest.raises(DataError, match=r"x.jsonl:2: not UTF-8"):
        read_jsonl(tmp_path / "x.jsonl")


@pytest.mark.slow
def test_repro_single_stage_with_a_bad_param_keeps_every_output(prepared_repo, tmp_path):
    """`dvc repro -s prepare` skips `validate`, and DVC deletes prepare's outputs before the
    stage's own check: the stage puts them back (git for metrics, DVC's cache for the rest)."""
    repo = tmp_path / "repo"
    shutil.copytree(prepared_repo, repo, symlinks=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"],
                   cwd=repo, check=True)
    before = {name: digest(repo / name) for name in OUTPUTS}
    params_edit(lambda p: p["data"]["sizes"].update(sft=-1))(repo)
    with pytest.raises(AssertionError) as failed:
        dvc(repo, "repro", "-s", "prepare")
    said = str(failed.value)
    assert "Traceback" not in said and "data.sizes.sft" in said, said
    assert "its previous outputs are back" in said, said
    assert {name: digest(repo / name) for name in OUTPUTS} == before
    subprocess.run(["git", "checkout", "params.yaml"], cwd=repo, check=True)
    assert "Running stage 'prepare'" not in dvc(repo, "repro", "prepare")
