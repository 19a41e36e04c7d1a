"""DVC experiments as rows: name, state, git revision, params and metrics, from
`dvc exp show --json` (or a saved copy of it). Shared by the reports under src/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def exp_show(show_json: str | Path | None = None, all_commits: bool = True) -> list:
    if show_json:
        return json.loads(Path(show_json).read_text())
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    if all_commits:
        command.append("--all-commits")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command[1:])}` failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def experiments(prefix: str = "", show_json: str | Path | None = None,
                match: str = "") -> list[dict]:
    """One row per experiment whose name starts with `prefix` (and matches the regular
    expression `match`, if given): {name, state (done, running,
    queued, failed...), rev (its git commit, None while it runs), params (params.yaml), metrics
    ({file: values})}. Experiments of every commit are read, so runs made before a code change
    stay listed."""
    rows = []
    for baseline in exp_show(show_json):
        for exp in baseline.get("experiments") or []:
            name = exp.get("name") or ""
            if not name.startswith(prefix) or (match and not re.search(match, name)):
                continue
            rev = exp["revs"][0]
            state = (exp.get("executor") or {}).get("state", "done")
            if state == "success":  # a finished queue task
                state = "done"
            if rev.get("error"):
                state = "failed"
            data = rev.get("data") or {}
            metrics = {path: (m.get("data") or {}) for path, m in (data.get("metrics") or {}).items()}
            params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
            commit = rev.get("rev")
            rows.append({"name": name, "state": state, "params": params, "metrics": metrics,
                         "rev": commit if commit and commit != "workspace" else None})
    return rows


def read_at(rev: str, path: str, repo: str | Path = ".") -> str | None:
    """A file's text at `rev` (an experiment's commit), DVC-tracked (from the local cache) or
    git-tracked; None where it is absent."""
    import dvc.api
    from dvc.exceptions import DvcException
    from scmrepo.exceptions import SCMError

    try:
        return dvc.api.read(path, repo=str(repo), rev=rev)
    except (DvcException, SCMError, FileNotFoundError):  # SCMError: a commit that is not here
        return None
