"""DVC plots rendered to SVG offline (rlrewrite/report/plots.py) in a throwaway DVC project."""

import os
import subprocess
import sys


def test_plots_render_offline_and_missing_data_is_named(tmp_path):
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path,
                   check=True, env=env)
    (tmp_path / "steps.tsv").write_text("step\tloss\n1\t1.25\n2\t0.75\n3\t0.5\n")
    (tmp_path / "dvc.yaml").write_text(
        "plots:\n  - steps.tsv:\n      x: step\n      y: loss\n  - absent.tsv:\n      x: step\n")
    done = subprocess.run([sys.executable, "-m", "rlrewrite.report", "plots", "--out", "svg"],
                          cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    svg = (tmp_path / "svg" / "steps_tsv.svg").read_text()
    assert svg.startswith("<svg") and ">loss<" in svg and "cdn" not in svg.lower()
    assert "no data for absent.tsv" in done.stderr
