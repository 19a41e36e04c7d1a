"""lm-evaluation-harness task YAMLs for the quiz benchmarks (tasks are data, loaded offline).

Two variants per task: `quiz_<name>` scores each option's text by log-likelihood (cloze, as lm-eval
does for ARC); `quiz_<name>_gen` asks for the option letter in `\\boxed{}` and parses it strictly,
as the paper scored its general benchmarks, so it also measures answering behaviour.
Data paths are relative to the repository root, where DVC runs every stage.
"""

from __future__ import annotations

from pathlib import Path

import yaml

LETTERS = "ABCDEFGHIJ"


def mc_task(name: str, data_file: str) -> dict:
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data_file}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "gold",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


def gen_task(name: str, data_file: str, n_choices: int) -> dict:
    options = "\n".join(f"{LETTERS[i]}. {{{{choices[{i}]}}}}" for i in range(n_choices))
    letters = LETTERS[:n_choices]
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data_file}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": (f"{{{{question}}}}\n{options}\nAnswer with the letter of the correct "
                        f"option inside \\boxed{{}}, for example \\boxed{{{letters[0]}}}."),
        "doc_to_target": f"{{{{{list(letters)}[gold]}}}}",
        "generation_kwargs": {"until": [], "max_gen_toks": 48, "do_sample": False},
        "filter_list": [{"name": "strict", "filter": [
            {"function": "regex", "regex_pattern": f"\\\\boxed\\{{([{letters}])\\}}",
             "group_select": 0, "fallback": "[invalid]"},
            {"function": "take_first"}]}],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


def write_quiz_tasks(task_dir: Path, data_file: str, base_name: str, n_choices: int) -> list[str]:
    """Write both variants of one quiz task; return the lm-eval task names."""
    names = [f"quiz_{base_name}", f"quiz_{base_name}_gen"]
    for config in (mc_task(names[0], data_file), gen_task(names[1], data_file, n_choices)):
        (task_dir / f"{config['task']}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return names
