"""The method comparison over experiments: intervals, pairing, and nothing dropped silently."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rlrewrite import run_records
from rlrewrite.report.comparison import markdown
from rlrewrite.report.runs import ReportError, load_runs, with_records
from rlrewrite.report.statistics import summarise

GENERAL = {"quiz_a": 40, "quiz_b": 60}
DOWNSTREAM = 50


def items(rng, base_p: float, tuned_p: dict, down_tuned: float) -> dict:
    """Per-item 0/1 scores: the same base items for every run (one data seed)."""
    base_rng = np.random.default_rng(123)
    tasks = {"downstream_math": {"ids": [str(i) for i in range(DOWNSTREAM)],
                                 "base": (base_rng.random(DOWNSTREAM) < 0.1).astype(float).tolist(),
                                 "tuned": (rng.random(DOWNSTREAM) < down_tuned).astype(float).tolist()}}
    for task, n in GENERAL.items():
        base = (base_rng.random(n) < base_p).astype(float)
        keep = rng.random(n) >= tuned_p[task]  # share of right answers lost
        tasks[task] = {"ids": [str(i) for i in range(n)], "base": base.tolist(),
                       "tuned": (base * keep).tolist()}
    return {"downstream_task": "downstream_math", "tasks": tasks}


TARGETS = [{"id": f"r{i}", "question": f"q{i}", "solution": f"s{i}", "target": f"t{i}",
            "rewritten": i % 2 == 0, "method": "rl"} for i in range(25)]


def row(name, method, seed, state="done", data_seed=0, acceptance=0.5):
    return {"name": name, "state": state, "rev": None if state != "done" else f"rev-{name}",
            "params": {"seed": seed, "rewrite": {"method": method}, "data": {"seed": data_seed}},
            "metrics": {"metrics/rewrite.json": {"acceptance_rate": acceptance,
                                                 "qa_nll_shift": -0.1 * (method == "rl")}}}


def grid(forget_rl: float = 0.05, forget_original: float = 0.4):
    rng = np.random.default_rng(0)
    rows, store = [], {}
    for method, lost in (("original", forget_original), ("rl", forget_rl)):
        for seed in (0, 1, 2):
            r = row(f"{method}-s{seed}", method, seed, acceptance=0.4 + 0.1 * seed)
            rows.append(r)
            store[r["rev"]] = json.dumps(items(rng, 0.8, {"quiz_a": lost, "quiz_b": lost}, 0.3))
    rows.append(row("rl-s3", "rl", 3, state="running"))
    rows.append(row("rl-s4", "rl", 4, state="failed"))
    rows.append(row("prompt-s0", "prompt", 0))  # finished, but its commit has no items
    targets = "".join(json.dumps(t) + "\n" for t in TARGETS)
    return rows, lambda rev, path: (store.get(rev) if path == "data/eval/items.json"
                                    else targets if rev in store else None)


def test_intervals_cover_the_means_and_a_real_difference_is_resolved():
    rows, read = grid()
    runs, left_out = load_runs(rows, read)
    assert {r["name"] for r in left_out} == {"rl-s3", "rl-s4", "prompt-s0"}
    assert {r["reason"] for r in left_out if r["name"] != "prompt-s0"} == {"running", "failed"}
    summary = summarise(runs, resamples=500, seed=0)

    original, rl = summary["methods"]["original"], summary["methods"]["rl"]
    assert original["seeds"] == rl["seeds"] == [0, 1, 2]
    for entry in (original, rl):
        for key in ("gain", "forgetting", "acceptance_rate"):
            mean, lo, hi = entry[key]
            assert lo < mean < hi
    assert original["forgetting"][0] == pytest.approx(0.8 * 0.4, abs=0.08)
    mean, lo, hi = summary["paired"]["rl"]["forgetting"]  # rl minus original: less forgetting
    assert hi < 0 and lo < mean < hi
    assert mean == pytest.approx(rl["forgetting"][0] - original["forgetting"][0])
    assert set(summary["paired"]["rl"]["forgetting_by_task"]) == set(GENERAL)
    assert len(summary["runs"]) == 6

    text = markdown(summary, left_out, 500)
    assert "| rl | 0,1,2 |" in text and " *" in text  # the resolved difference is marked
    assert "- rl-s3 (rl, seed 3): running" in text and "- prompt-s0 (prompt, seed 0): no " in text
    assert "- `rl` against `original` (seeds 0,1,2): no resolved difference in gain" in text
    assert "forgets less (accuracy Δ -0." in text


def test_no_difference_is_not_marked_resolved():
    rows, read = grid(forget_rl=0.2, forget_original=0.2)
    summary = summarise(load_runs(rows, read)[0], resamples=500, seed=0)
    mean, lo, hi = summary["paired"]["rl"]["forgetting"]
    assert lo < 0 < hi


def test_one_seed_has_no_seed_interval_but_an_item_interval():
    rows, read = grid()
    runs = [r for r in load_runs(rows, read)[0] if r["seed"] == 0]
    summary = summarise(runs, resamples=200, seed=0)
    assert summary["methods"]["rl"]["acceptance_rate"][1] is None
    assert summary["paired"]["rl"]["forgetting"][1] is None  # no seed-level interval...
    assert summary["paired"]["rl"]["items_forgetting"][1] is not None  # ...an item-level one
    text = markdown(summary, [], 200)
    assert "(one seed)" in text
    assert "- `rl` against `original`: one seed shared, fewer than 3: not yet a result (Δ gain" in text


def test_two_seeds_report_the_difference_without_calling_it():
    rows, read = grid()
    runs = [r for r in load_runs(rows, read)[0] if r["seed"] in (0, 1)]
    summary = summarise(runs, resamples=200, seed=0)
    assert summary["paired"]["rl"]["forgetting"][2] < 0  # resolved in the numbers...
    text = markdown(summary, [], 200)
    assert "- `rl` against `original`: 2 seeds shared, fewer than 3: not yet a result" in text
    assert "forgets less" not in text


def test_records_alone_give_the_same_report_and_a_live_run_replaces_its_record(tmp_path):
    rows, read = grid()
    live, left_out = load_runs(rows, read)
    for run in live:
        run_records.save(run, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{r['name']}{suffix}" for r in live for suffix in (".json", ".samples.jsonl"))
    records = run_records.load(tmp_path)
    assert {r["record"] for r in records} == {str(tmp_path / f"{r['name']}.json") for r in live}
    samples = (tmp_path / "rl-s0.samples.jsonl").read_text().splitlines()
    assert len(samples) == 20 and json.loads(samples[1]) == {
        "id": "r1", "question": "q1", "solution": "s1", "target": "t1", "accepted": False}
    same = lambda summary: json.dumps(summary, sort_keys=True)  # noqa: E731
    assert same(summarise(with_records([], records), 300, 0)) == same(summarise(live, 300, 0))

    rerun = {**live[0], "rev": "rev-rerun", "rewrite": {"acceptance_rate": 0.99}}
    merged = with_records([rerun], records)
    assert sorted(r["name"] for r in merged) == sorted(r["name"] for r in live)
    assert [r["rewrite"] for r in merged if r["name"] == rerun["name"]] == [rerun["rewrite"]]
    assert [r["name"] for r in with_records([], records, match="^rl-")] == ["rl-s0", "rl-s1", "rl-s2"]
    assert [r["name"] for r in with_records([], records, prefix="orig")] == [
        "original-s0", "original-s1", "original-s2"]


def test_a_record_standing_in_for_a_running_experiment_says_so(tmp_path):
    rows, read = grid()
    live, left_out = load_runs(rows, read)
    run_records.save({**[r for r in live if r["name"] == "rl-s2"][0], "name": "rl-s3", "seed": 3},
                     tmp_path)
    runs = with_records(live, run_records.load(tmp_path), left_out=left_out)
    assert "rl-s3" in {r["name"] for r in runs}
    reason = [e["reason"] for e in left_out if e["name"] == "rl-s3"][0]
    assert reason.startswith("running; its record (") and "rl-s3.json" in reason


def test_pairs_across_machines_are_pointed_out():
    rows, read = grid()
    runs, _ = load_runs(rows, read)
    for run in runs:
        run["machine"] = "Xeon (AMX)" if run["name"] == "rl-s1" else "EPYC (AVX512-BF16)"
    summary = summarise(runs, resamples=200, seed=0)
    assert [p["seed"] for p in summary["paired"]["rl"]["across_machines"]] == [1]
    text = markdown(summary, [], 200)
    assert "Note: `rl` seed 1 pairs runs from different machines" in text
    assert "(original: EPYC (AVX512-BF16), ?; rl: Xeon (AMX), ?)" in text
    assert "- Xeon (AMX), ?: rl-s1" in text


def test_an_experiment_name_at_two_commits_is_refused():
    rows, read = grid()
    rows.append({**rows[0], "rev": "rev-original-s0-again"})
    with pytest.raises(ReportError, match=r"original-s0 \(rev-original-s0, rev-original-s0-again\)"):
        load_runs(rows, lambda rev, path: read(rev.removesuffix("-again"), path))


def test_a_record_of_other_items_is_refused_by_name(tmp_path):
    rows, read = grid()
    live, _ = load_runs(rows, read)
    other = json.loads(json.dumps(live[0]))
    other["name"] = "original-s7"
    other["items"]["tasks"]["quiz_a"]["ids"] = other["items"]["tasks"]["quiz_a"]["ids"][:-1]
    run_records.save(other, tmp_path)
    with pytest.raises(ReportError, match=r"original-s7.json was evaluated on other items .*quiz_a"):
        with_records(live, run_records.load(tmp_path))


def test_a_broken_record_is_named(tmp_path):
    path = tmp_path / "rl-s0.json"
    for text, error in (('{"format": 2, "name": "rl-s0"}', "rl-s0.json: missing method, seed"),
                        ("{not json", "rl-s0.json: not JSON"),
                        ('{"format": 7}', "rl-s0.json: not a run record of format 1 or 2")):
        path.write_text(text)
        with pytest.raises(run_records.RecordError, match=error):
            run_records.load(tmp_path)
    rows, read = grid()
    run_records.save(load_runs(rows, read)[0][0], tmp_path)  # original-s0
    path.write_text((tmp_path / "original-s0.json").read_text())
    with pytest.raises(run_records.RecordError, match="rl-s0.json: holds experiment 'original-s0'"):
        run_records.load(tmp_path)


def test_a_record_with_another_data_seed_is_refused(tmp_path):
    rows, read = grid()
    live, _ = load_runs(rows, read)
    run_records.save({**live[0], "name": "original-s9", "data_seed": 7}, tmp_path)
    with pytest.raises(ReportError, match="original-s9.json has data seed 7"):
        with_records(live, run_records.load(tmp_path))


def test_mixed_data_seeds_are_refused():
    rows, read = grid()
    rows[0]["params"]["data"]["seed"] = 7
    with pytest.raises(ReportError, match="original-s1 has data seed 0, experiment original-s0 7"):
        load_runs(rows, read)


def test_the_script_writes_the_report_and_figure_from_dvc_exp_show(tmp_path):
    """The CLI on a saved `dvc exp show --json`, reading per-item results from git commits."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    rows, read = grid()
    exps = []
    for r in rows:
        rev = None
        if r["rev"] and read(r["rev"], "data/eval/items.json") is not None:
            (repo / "data/eval").mkdir(parents=True, exist_ok=True)
            (repo / "data/eval/items.json").write_text(read(r["rev"], "data/eval/items.json"))
            subprocess.run(git + ["add", "-A"], check=True)
            subprocess.run(git + ["commit", "-qm", r["name"]], check=True)
            rev = subprocess.run(git[:3] + ["rev-parse", "HEAD"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        elif r["rev"]:
            rev = "0" * 40  # a commit that does not exist: no items
        revision = {"rev": rev or "workspace", "name": r["name"],
                    "data": {"params": {"params.yaml": {"data": r["params"]}},
                             "metrics": {k: {"data": v} for k, v in r["metrics"].items()}},
                    "error": {"msg": "failed"} if r["state"] == "failed" else None}
        executor = {"state": r["state"]} if r["state"] == "running" else None
        exps.append({"name": r["name"], "revs": [revision], "executor": executor})
    show = tmp_path / "show.json"
    show.write_text(json.dumps([{"rev": "workspace", "experiments": None},
                                {"rev": "abc", "experiments": exps}]))
    out = tmp_path / "reports" / "comparison"
    done = subprocess.run([sys.executable, "-m", "rlrewrite.report", "comparison", "--show-json",
                           str(show), "--out", str(out), "--resamples", "300"],
                          cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reports/comparison.png").stat().st_size > 10_000
    assert (tmp_path / "reports/comparison_dose.png").stat().st_size > 10_000
    table = (tmp_path / "reports/comparison.md").read_text()
    assert table.startswith("# Methods compared") and "| original | 0,1,2 |" in table
    assert "prompt-s0 (prompt, seed 0): no data/eval/items.json" in table
    points = json.loads((tmp_path / "reports/comparison_points.json").read_text())
    assert {(p["method"], p["seed"]) for p in points} == {(m, s) for m in ("original", "rl")
                                                          for s in (0, 1, 2)}
    records = sorted(p.name for p in (repo / "reports/runs").glob("*.json"))
    assert records == [f"{m}-s{s}.json" for m in ("original", "rl") for s in (0, 1, 2)]

    # The experiments are gone (a fresh checkout): the records alone give the same tables.
    show.write_text(json.dumps([{"rev": "workspace", "experiments": None}]))
    again = subprocess.run([sys.executable, "-m", "rlrewrite.report", "comparison", "--show-json",
                            str(show), "--out", str(out), "--resamples", "300"],
                           cwd=repo, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    tables = lambda text: text.split("Where each experiment ran")[0]  # noqa: E731
    assert tables((tmp_path / "reports/comparison.md").read_text()) == tables(table)


def test_another_reference_method_is_paired_against():
    rows, read = grid()
    runs = load_runs(rows, read)[0]
    summary = summarise(runs, resamples=200, seed=0, reference="rl")
    assert summary["reference"] == "rl" and set(summary["paired"]) == {"original"}
    mean = summary["paired"]["original"]["forgetting"][0]  # original minus rl: forgets more
    against_original = summarise(runs, resamples=200, seed=0)["paired"]["rl"]["forgetting"][0]
    assert mean == pytest.approx(-against_original) and mean > 0
    text = markdown(summary, [], 200)
    assert "Against `rl`, paired" in text and "- `original` against `rl` (seeds 0,1,2)" in text


def logp_run(method, seed, shift, config="c1"):
    """A run with a standard and a quiz task, accuracy and gold log-probabilities: the tuned
    model's log-probabilities fall by `shift` nats on average (with per-seed noise)."""
    base_rng = np.random.default_rng(5)
    rng = np.random.default_rng([seed, sum(map(ord, method))])  # hash() varies per process
    tasks = {"downstream_math": {"ids": ["0", "1"], "base": [0.0, 0.0], "tuned": [1.0, 0.0]}}
    for task, n in (("std_piqa", 300), ("quiz_a", 80)):
        base_margin = base_rng.normal(0.3, 1.0, n)  # gold minus the other option, nats
        tuned_margin = base_margin - shift - rng.normal(0, 0.02) - rng.normal(0, 0.05, n)
        base_ll = [[-5.0 + m, -5.0] for m in base_margin]
        tuned_ll = [[-5.0 + m, -5.0] for m in tuned_margin]
        tasks[task] = {"ids": [str(i) for i in range(n)],
                       "base": (base_margin > 0).astype(float).tolist(),
                       "tuned": (tuned_margin > 0).astype(float).tolist(),
                       "base_logp": (-np.logaddexp(0, -base_margin)).tolist(),
                       "tuned_logp": (-np.logaddexp(0, -tuned_margin)).tolist(),
                       "gold": [0] * n, "chars": [[5, 5]] * n, "base_ll": base_ll,
                       "tuned_ll": tuned_ll}
    return {"name": f"{method}-s{seed}", "method": method, "seed": seed, "config": config,
            "items": {"downstream_task": "downstream_math", "tasks": tasks}, "rewrite": {}}


def test_the_continuous_measure_the_primary_family_and_power():
    runs = [logp_run(m, s, shift) for m, shift in (("original", 0.10), ("rl", 0.02))
            for s in range(5)]
    summary = summarise(runs, resamples=200, seed=0)
    assert summary["measures"] == ["acc", "prob", "logp"]
    assert summary["families"] == ["quiz", "standard"]
    paired = summary["paired"]["rl"]
    mean, lo, hi = paired["forgetting_logp_by_family"]["standard"]
    assert -0.09 < mean < 0 and hi < 0
    mean, lo, hi = paired["forgetting_prob_by_family"]["standard"]
    assert -0.08 < mean < 0 and hi < 0
    # the probability is what the stored option log-likelihoods give: consistent with logp
    run = runs[0]["items"]["tasks"]["std_piqa"]
    from rlrewrite.report.statistics import gold_probability
    assert np.log(gold_probability(run["base_ll"], run["gold"])) == pytest.approx(run["base_logp"])
    assert len(paired["per_seed"]["forgetting_logp/standard"]) == 5
    power = summary["power"]
    assert power["logp"]["standard"]["source"] == "paired differences"
    assert power["acc"]["standard"]["seeds_for_one_point"] >= 2
    assert power["logp"]["standard"]["one_point"] > 0  # nats per accuracy point: same sign
    assert power["prob"]["standard"]["seeds_for_one_point"] >= 2
    text = markdown(summary, [], 200)
    assert "forgets less on the standard family (accuracy Δ -0.0" in text
    assert "gold log-probability Δ -0.0" in text and "gold probability Δ -0.0" in text
    assert "| logp | standard |" in text


def test_runs_of_another_configuration_are_never_pooled():
    from rlrewrite.report.runs import group_labels

    runs = ([logp_run("original", s, 0.1) for s in range(3)]
            + [logp_run("rl", s, 0.05, config="old") for s in range(3)]
            + [logp_run("rl", s, 0.02, config="new") for s in range(3)])
    labels = group_labels(runs)
    assert {labels(r) for r in runs} == {"original", "rl@old", "rl@new"}
    summary = summarise(runs, resamples=100, seed=0, group_of=labels)
    assert set(summary["paired"]) == {"rl@old", "rl@new"}
    assert summary["methods"]["rl@new"]["seeds"] == [0, 1, 2]


def test_two_runs_of_one_seed_in_a_row_are_refused():
    from rlrewrite.report.statistics import ComparisonError

    runs = [logp_run("original", 0, 0.1), logp_run("original", 1, 0.1),
            {**logp_run("original", 1, 0.1), "name": "original-s1-again"}]
    with pytest.raises(ComparisonError, match=r"original: seed\(s\) \[1\] .*original-s1-again"):
        summarise(runs, resamples=50, seed=0)


def test_configuration_ignores_seeds_and_execution_keys_only():
    from rlrewrite.report.runs import config_digest

    params = {"seed": 0, "sft": {"seed": None, "learning_rate": 5e-4, "save_steps": 50},
              "vllm": {"cpu_kvcache_gib": 1}, "rewrite": {"generation_batch_size": 16, "method": "rl"}}
    same = {"seed": 3, "sft": {"seed": None, "learning_rate": 5e-4, "save_steps": 10},
            "vllm": {"cpu_kvcache_gib": 4}, "rewrite": {"generation_batch_size": 8, "method": "rl"}}
    assert config_digest(params) == config_digest(same)
    other_lr = {**params, "sft": {**params["sft"], "learning_rate": 1e-4}}
    assert config_digest(other_lr) != config_digest(params)
    # with sft.seed set, the training seed is part of the configuration (one rewrite output)
    a = {**params, "sft": {**params["sft"], "seed": 1}}
    b = {**params, "seed": 1, "sft": {**params["sft"], "seed": 1}}
    assert config_digest(a) != config_digest(b)


def test_configuration_holds_only_what_the_method_reads():
    from rlrewrite.report.runs import config_digest

    params = {"seed": 0, "sft": {"seed": None, "learning_rate": 5e-4},
              "rewriter": {"learning_rate": 5e-4, "prompt_file": "a.txt"}, "gate": {"judge": False},
              "rewrite": {"method": "original", "temperature": 0.0,
                          "select": {"rule": "low", "generator": "prompt"}}}

    def changed(method, section, key, value, **select):
        new = json.loads(json.dumps(params))
        new["rewrite"]["method"] = method
        new["rewrite"]["select"].update(select)
        base = json.loads(json.dumps(new))
        new[section][key] = value
        return config_digest(base) != config_digest(new)

    # original reads no rewriter, gate or rewrite setting; a record without a new key, or with a
    # key's old name, pools with today's
    assert not changed("original", "gate", "judge", True)
    assert not changed("original", "rewriter", "prompt_file", "b.txt")
    assert not changed("original", "rewrite", "temperature", 0.7)
    older = json.loads(json.dumps(params))
    del older["rewrite"]["select"]
    assert config_digest(older) == config_digest(params)
    renamed = json.loads(json.dumps(params))
    renamed["rewrite"]["method"] = "prompt"
    old_names = json.loads(json.dumps(renamed))
    old_names["rewriter"]["judge"] = old_names.pop("gate")["judge"]
    assert config_digest(old_names) == config_digest(renamed)
    # a record made before gate.reject_instruction_echo existed did what `false` does
    echo_off, echo_on = (json.loads(json.dumps(renamed)) for _ in range(2))
    echo_off["gate"]["reject_instruction_echo"] = False
    echo_on["gate"]["reject_instruction_echo"] = True
    assert config_digest(renamed) == config_digest(echo_off) != config_digest(echo_on)
    # prompt reads the gate, not the rewriter's training recipe nor select
    assert changed("prompt", "gate", "judge", True)
    assert changed("prompt", "rewriter", "prompt_file", "b.txt")
    assert not changed("prompt", "rewriter", "learning_rate", 1e-4)
    assert changed("prompt", "rewrite", "temperature", 0.7)
    assert not changed("prompt", "rewrite", "select", {"rule": "high"})
    # rl and select from rl read the recipe; select reads its own settings
    assert changed("rl", "rewriter", "learning_rate", 1e-4)
    assert changed("select", "rewriter", "learning_rate", 1e-4, generator="rl")
    assert not changed("select", "rewriter", "learning_rate", 1e-4)
    assert changed("select", "rewrite", "select", {"rule": "high", "generator": "prompt"})


def test_a_generated_task_leaves_the_continuous_measures_to_the_others():
    runs = [logp_run(m, s, shift) for m, shift in (("original", 0.10), ("rl", 0.02))
            for s in range(3)]
    for run in runs:  # a generated quiz: accuracy only
        task = run["items"]["tasks"]["quiz_a"]
        run["items"]["tasks"]["quiz_a"] = {k: task[k] for k in ("ids", "base", "tuned")}
    summary = summarise(runs, resamples=50, seed=0)
    assert summary["measure_tasks"]["prob"] == ["std_piqa"]
    assert "standard" in summary["paired"]["rl"]["forgetting_prob_by_family"]
    assert "quiz" not in summary["paired"]["rl"]["forgetting_prob_by_family"]
    assert "quiz" in summary["paired"]["rl"]["forgetting_by_family"]
    markdown(summary, [], 50)  # the tables render with the missing cells as –


def test_each_selection_pool_is_tabled_once_with_the_runs_drawn_from_it():
    from rlrewrite.report.comparison import pool_table

    pool = {"pool_candidates": 4800, "pool_pass_rate": 0.25, "pool_questions_covered": 300,
            "pool_low_nll": 1.4, "pool_high_nll": 1.8, "pool_random_nll": 1.6,
            "pool_low_tokens": 20000, "pool_high_tokens": 20300, "pool_random_tokens": 20100,
            "pool_low_high_gap": 0.4}
    runs = [{"name": "select-rl-low-s0", **pool}, {"name": "select-rl-high-s0", **pool},
            {"name": "select-rl-low-s9", **pool, "pool_low_nll": 1.5, "pool_low_high_gap": 0.3},
            {"name": "original-s0", "pool_low_high_gap": None}]
    rows = [line for line in pool_table(runs) if line.startswith("| select")]
    assert rows == [
        "| select-rl-high-s0, select-rl-low-s0 | 4800 | 0.25 | 300 | 1.4 / 1.6 / 1.8 | "
        "20000 / 20100 / 20300 | 0.4 |",
        "| select-rl-low-s9 | 4800 | 0.25 | 300 | 1.5 / 1.6 / 1.8 | 20000 / 20100 / 20300 | 0.3 |"]
    assert pool_table(runs[3:]) == []
