"""The timing table of perf/dag_timing.py over stage metrics files."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEAK = {"bf16_gflops": 1000.0, "fp32_gflops": 250.0, "threads": 2, "amx_tiles": True,
        "cpu": "Test CPU (AMX)"}
PARAMETERS = 100_000_000


def write_metrics(folder: Path) -> None:
    usage = {"device": "cpu", "precision": "bf16"}
    files = {
        "prepare": {"model_parameters": PARAMETERS, "time_s": 30.0, "peak_rss_gib": 1.5,
                    "device": "cpu"},
        "rewriter": {"train_tokens": 50_000, "generated_tokens": 8_000, "train_s": 600.0,
                     "time_s": 700.0, "peak_rss_gib": 5.5, "engine": "vllm", **usage},
        "rewrite": {"generation_tokens_per_second": 400.0, "time_s": 240.0, "peak_rss_gib": 4.0,
                    "engine": "vllm", **usage},
        "sft": {"tokens_seen": 60_000, "train_seconds": 300.0, "time_s": 360.0,
                "peak_rss_gib": 4.4, **usage, "precision": "fp32"},
        "eval_base": {"time_s": 120.0, "peak_rss_gib": 3.0, "engine": "vllm", **usage},
    }
    folder.mkdir(parents=True)
    for name, metrics in files.items():
        (folder / f"{name}.json").write_text(json.dumps(metrics))


def run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "peak.json").write_text(json.dumps(PEAK))
    return subprocess.run([sys.executable, str(REPO / "perf/dag_timing.py"),
                           "--metrics", str(tmp_path / "metrics"), "--peak",
                           str(tmp_path / "peak.json"), "--out", str(tmp_path / "timing"), *extra],
                          capture_output=True, text=True, cwd=tmp_path / "repo"
                          if (tmp_path / "repo").is_dir() else tmp_path)


def test_table_reports_throughput_against_the_peak_of_each_stages_precision(tmp_path):
    write_metrics(tmp_path / "metrics")
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {r["stage"]: r for r in json.loads((tmp_path / "timing.json").read_text())["stages"]}
    assert list(rows) == ["prepare", "rollout-and-train-rewriter", "rewrite", "sft",
                          "evaluate-base"]  # `evaluate` has not run: left out
    # 6 x 1e8 parameters x 60k tokens / 300 s = 120 GFLOP/s, of the fp32 peak (250)
    assert rows["sft"]["share_of_peak"] == 0.48 and "train 120 GFLOP/s" in rows["sft"]["throughput"]
    # 6 x 1e8 x 50k / 600 s = 50 GFLOP/s of the bf16 peak (1000)
    assert rows["rollout-and-train-rewriter"]["share_of_peak"] == 0.05
    # 2 x 1e8 x 400 tok/s = 80 GFLOP/s
    assert rows["rewrite"]["share_of_peak"] == 0.08
    assert rows["prepare"]["share_of_peak"] is None and rows["evaluate-base"]["engine"] == "vllm"
    table = (tmp_path / "timing.md").read_text()
    assert "| sft |  | fp32 | 6.0 min | 4.40 GiB |" in table
    assert "| **all** | | | 24.2 min in stages; wall not timed | 5.50 GiB |" in table
    assert "Machine: Test CPU (AMX), 2 threads; matmul peak 1000.0 GFLOP/s bf16" in table


def test_readme_markers_are_filled_and_missing_inputs_named(tmp_path):
    write_metrics(tmp_path / "metrics")
    readme = tmp_path / "results.md"
    readme.write_text("intro\n<!-- dag-timing:start -->\nold\n<!-- dag-timing:end -->\nend\n")
    assert run(tmp_path, "--doc", str(readme)).returncode == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- dag-timing:start -->\n| stage |") and "old" not in text
    assert text.endswith("<!-- dag-timing:end -->\nend\n")

    (tmp_path / "metrics" / "prepare.json").unlink()
    done = run(tmp_path)
    assert done.returncode != 0 and "prepare.json" in done.stderr


def test_an_experiments_metrics_are_read_at_its_commit(tmp_path):
    """--exp: the metrics files of a finished DVC experiment, from its git commit."""
    repo = tmp_path / "repo"
    write_metrics(repo / "metrics")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "rl-s0"], check=True)
    rev = subprocess.run(git[:3] + ["rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    subprocess.run(git[:3] + ["rm", "-rq", "metrics"], check=True)  # not read from the workspace

    def experiment(name, state):
        return {"name": name, "executor": {"state": state} if state != "done" else None,
                "revs": [{"rev": rev, "name": name, "data": {}, "error": None}]}

    show = tmp_path / "show.json"
    show.write_text(json.dumps([{"rev": "abc", "experiments": [
        experiment("rl-s0", "done"), experiment("rl.s0", "running")]}]))
    done = run(tmp_path, "--exp", "rl-s0", "--show-json", str(show), "--wall-s", "1500")
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "timing.md").read_text()
    assert "| sft |  | fp32 | 6.0 min | 4.40 GiB |" in table
    assert "24.2 min in stages; 25.0 min wall |" in table

    for name in ("rl.s0", "rl-s1"):  # running (a regex would take "rl.s0" for "rl-s0"); absent
        done = run(tmp_path, "--exp", name, "--show-json", str(show))
        assert done.returncode != 0 and f"--exp {name}: no finished experiment" in done.stderr
