"""DVC plots drawn offline (rlrewrite/report/plots.py), as SVG files and as the page `dvc plots
show` writes, in a throwaway DVC project."""

import os
import re
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


def test_dvc_plots_show_writes_a_page_that_loads_nothing_from_a_network(tmp_path):
    """`dvc plots show` with the template `make setup` writes (and names in .dvc/config.local):
    Vega is inline and the page references no URL to fetch a script from."""
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path,
                   check=True, env=env)
    made = subprocess.run([sys.executable, "-m", "rlrewrite.report", "plots", "--write-template"],
                          cwd=tmp_path, capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    (tmp_path / "steps.tsv").write_text("step\tloss\n1\t1.25\n2\t0.75\n3\t0.5\n")
    (tmp_path / "dvc.yaml").write_text("plots:\n  - steps.tsv:\n      x: step\n      y: loss\n")
    shown = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "-o", "page"],
                           cwd=tmp_path, capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    page = (tmp_path / "page" / "index.html").read_text()
    assert "vegaEmbed('#steps_tsv'" in page and "window.vegaEmbed=" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # every script inline
    assert "cdn.jsdelivr" not in page
