import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One OpenMP thread per process, inherited by every stage a test starts: three xdist workers and
# their stages share two cores, and torch's spinning OpenMP threads, oversubscribed, made the
# tiny model's 256-token generation take 67 s of CPU instead of 1.1 s (docs/performance.md).
# The tiny model gains nothing from a second thread. Set before anything imports torch.
for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
# the pytest process's pid, inherited by its xdist workers and every process a test starts,
# however it detaches itself
SESSION_MARKER = "RLREWRITE_TEST_SESSION"
os.environ.setdefault(SESSION_MARKER, str(os.getpid()))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def environment_restored_after_each_test():
    """A test's environment changes stay in it: TRL's colocated vLLM sets RANK, WORLD_SIZE,
    MASTER_ADDR and MASTER_PORT in the process, and a later test's subprocess inheriting them
    starts torch.distributed on a port the first still holds (EADDRINUSE)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def pytest_unconfigure(config):
    """No process the tests started outlives them: vLLM engine processes a test left running (an
    xdist worker ends with os._exit, so vLLM's exit hooks never run; ~2.7 GiB each), and those
    that left the process tree (torchrun's ranks of a killed stage, the group of a command a
    timed-out worker left behind; not DVC's celery queue worker, which overwrites its environment
    with its process title: test_compare_grid stops its own). Runs last, in the pytest process."""
    if os.environ.get(SESSION_MARKER) != str(os.getpid()):
        return  # an xdist worker: the controller sweeps once every worker is done
    import psutil

    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(SESSION_MARKER) == str(os.getpid()):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass


def pytest_collection_modifyitems(config, items):
    """Slow tests first (stable order otherwise), so that xdist workers do not end on one long
    test started last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def real_tokenizer():
    """The embedded model's tokenizer (read from the packaged GGUF, special tokens fixed), or a
    saved copy named by RLREWRITE_TEST_TOKENIZER (for machines without the package)."""
    from transformers import AutoTokenizer

    if os.environ.get("RLREWRITE_TEST_TOKENIZER"):
        return AutoTokenizer.from_pretrained(os.environ["RLREWRITE_TEST_TOKENIZER"])
    from rlrewrite.config import EMBEDDED_MODEL
    from rlrewrite.data.base_model import embedded_gguf

    folder, filename = embedded_gguf(EMBEDDED_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    tokenizer.eos_token = tokenizer.pad_token = "<|im_end|>"
    tokenizer.bos_token = "<|im_start|>"
    return tokenizer


def _tiny_llama(out: Path, tokenizer, hidden: int, heads: int, kv_heads: int) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                         intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, real_tokenizer) -> Path:
    """A few-MB random Llama with the real tokenizer and chat template: for tests that need a
    model's mechanics, not its knowledge."""
    return _tiny_llama(tmp_path_factory.mktemp("tiny-model"), real_tokenizer, 64, 4, 2)


def kill_group(pgid: int) -> None:
    """SIGKILL a process group that may already be gone (its leader exited, nothing left in it)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_bounded(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """`subprocess.run(..., capture_output=True, text=True)` that, past `timeout` seconds, kills
    the command's whole process group (a DVC stage, its vLLM engine processes) and fails with
    what it printed, instead of waiting on a pipe an orphaned grandchild still holds."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            state = "still running" if proc.poll() is None else "exited, a child holding its output"
            kill_group(proc.pid)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:  # a process outside the group holds the pipes
                out, err = "(output not readable)", ""
            raise AssertionError(f"{' '.join(cmd)}: {state} after {timeout} s, killed\n"
                                 f"{out}\n{err}") from None
        except BaseException:  # Ctrl-C: take the command's group along (a pytest-timeout
            # ends the worker with os._exit instead: pytest_unconfigure's sweep)
            kill_group(proc.pid)
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def copy_repo(dest: Path) -> Path:
    """A copy of the project's tracked sources (no outputs, no venv) as a fresh git+DVC repo."""
    for name in ("src", "data/bsd-quiz", "data/prompts", "data/sources", "tests"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(REPO / name, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    dvc = [sys.executable, "-m", "dvc"]  # this environment's, whatever PATH says
    subprocess.run([*dvc, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*dvc, "config", "core.analytics", "false"], cwd=dest, check=True)
    return dest


@pytest.fixture(scope="session")
def tiny_vllm_model_dir(tmp_path_factory, real_tokenizer) -> Path:
    """Like `tiny_model_dir`, with a head size vLLM's CPU attention kernels support (64)."""
    return _tiny_llama(tmp_path_factory.mktemp("tiny-vllm-model"), real_tokenizer, 128, 2, 1)
