"""The rewriter report over `dvc exp show --json` (a saved copy of a real two-experiment one)."""

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data" / "exp_show.json"
REPO = Path(__file__).resolve().parents[1]


def test_report_lists_finished_runs_with_the_criteria_and_running_ones_as_such(tmp_path):
    out = tmp_path / "runs.md"
    subprocess.run([sys.executable, "-m", "rlrewrite.report", "rewriter", "--prefix", "gate-",
                    "--show-json", str(DATA), "--out", str(out)], check=True, capture_output=True)
    rows = {r["name"]: r for r in json.loads(out.with_suffix(".json").read_text())}
    assert set(rows) == {"gate-s0-hf", "gate-s0-vllm"}
    assert rows["gate-s0-hf"]["state"] == "running" and "keeps_reasoning" not in rows["gate-s0-hf"]
    done = rows["gate-s0-vllm"]
    assert done["engine"] == "vllm" and done["seed"] == 0
    assert done["rewrite_accepted_answer_only_share"] == 0.0
    assert done["keeps_reasoning"] is True
    table = out.read_text()
    assert "| gate-s0-hf | hf | 0 | running |" in table
    assert "0.09 → 0.59" in table


def test_report_refuses_an_empty_selection(tmp_path):
    done = subprocess.run([sys.executable, "-m", "rlrewrite.report", "rewriter", "--prefix", "nope",
                           "--show-json", str(DATA), "--out", str(tmp_path / "x.md")],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "no experiment named nope*" in done.stderr


def test_report_fills_the_readme_markers_and_keeps_the_rest(tmp_path):
    readme = tmp_path / "results.md"
    readme.write_text("intro\n<!-- rewriter-runs:start -->\nold table\n<!-- rewriter-runs:end -->\nend\n")
    subprocess.run([sys.executable, "-m", "rlrewrite.report", "rewriter", "--prefix", "gate-",
                    "--show-json", str(DATA), "--out", str(tmp_path / "runs.md"),
                    "--doc", str(readme)], check=True, capture_output=True)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- rewriter-runs:start -->\n| run |")
    assert "old table" not in text and "0.09 → 0.59" in text
    assert text.endswith("|\n<!-- rewriter-runs:end -->\nend\n")


def test_aligns_needs_every_criterion_of_a_rewriter_that_moves_targets_toward_pi0():
    from rlrewrite.report.rewriter import summarise

    def row(**rewrite):
        metrics = {"metrics/rewriter.json": {"gate_pass_rate_first_fifth": 0.1,
                                             "gate_pass_rate_last_fifth": 0.6,
                                             "qa_nll_vs_expert_first_fifth": 0.05,
                                             "qa_nll_vs_expert_last_fifth": -0.12},
                   "metrics/rewrite.json": {"accepted_answer_only_share": 0.0,
                                            "target_length_ratio": 1.05, "qa_nll_shift": -0.15,
                                            "embedding_spread": 0.31,
                                            "embedding_spread_original": 0.30, **rewrite}}
        return summarise({"name": "rl-s0", "state": "done", "params": {"seed": 0},
                          "metrics": metrics})

    assert row()["aligns"] is True
    assert row(qa_nll_shift=-0.05)["aligns"] is False  # not 0.1 nats/token closer to π0
    assert row(target_length_ratio=1.9)["aligns"] is False  # moved by growing long
    assert row(embedding_spread=0.2)["aligns"] is False  # collapsed diversity
    assert "aligns" not in row(embedding_spread_original=None)  # older runs: not judged
