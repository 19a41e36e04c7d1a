"""DVC's plots without a network, two ways:

- `dvc plots show` / `dvc plots diff` themselves: their HTML page loads Vega from a CDN (blank
  offline) unless given a template; `make setup` writes .dvc/offline_plots.html, a DVC HTML
  template with Vega, Vega-Lite and Vega-Embed inlined (vl-convert's bundle), and names it in
  .dvc/config.local (`plots.html_template`), so the page DVC writes draws offline. A checkout
  without it gets DVC's own page.
- SVG files: `dvc plots show --json` (or `dvc plots diff REV... --json`) gives each plot's
  Vega-Lite spec with its data filled in, and vl-convert renders it here.

    python -m rlrewrite.report plots                       # the workspace's plots, as SVG
    python -m rlrewrite.report plots original-s0 rl-s0     # experiments overlaid, as `dvc plots diff`
    python -m rlrewrite.report plots --write-template      # .dvc/offline_plots.html
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(".dvc/offline_plots.html")  # named in .dvc/config.local: plots.html_template


class PlotsError(RuntimeError):
    pass


def write_template(path: Path = TEMPLATE) -> Path:
    """A DVC HTML template whose page needs no network: the Vega libraries inline, and no
    `{scripts}` placeholder (where DVC would put its CDN tags); `{plot_divs}` takes the plots."""
    import vl_convert

    bundle = vl_convert.javascript_bundle()  # sets window.vegaEmbed, which DVC's divs call
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!DOCTYPE html>\n<html>\n<head>\n{refresh_tag}\n<title>DVC Plots</title>\n"
                    f"<script>{bundle}</script>\n</head>\n<body>\n{{plot_divs}}\n</body>\n"
                    "</html>\n")
    return path


def plot_specs(revisions: list[str]) -> dict[str, list[dict]]:
    """{plot id: [Vega-Lite spec, ...]} as DVC fills them for `revisions` (none: the workspace)."""
    command = ["dvc", "plots", "diff", *revisions] if revisions else ["dvc", "plots", "show"]
    done = subprocess.run([*command, "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise PlotsError(f"`{' '.join(command)} --json` failed: {done.stderr.strip()}")
    shown = json.loads(done.stdout)
    for error in shown.get("errors") or []:  # a missing file is reported once, by main()
        if error.get("type") != "FileNotFoundError":
            print(f"report plots: DVC: {error}", file=sys.stderr)
    return {plot: [entry["content"] for entry in entries if entry.get("type") == "vega"]
            for plot, entries in (shown.get("data") or {}).items()}


def file_name(plot: str, index: int, count: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "_", plot).strip("_")
    return f"{stem}{f'_{index}' if count > 1 else ''}.svg"


def render(specs: dict[str, list[dict]], out: Path) -> list[Path]:
    """Each spec as an SVG in `out`; plots with no data (outputs not in this workspace) skipped."""
    import vl_convert

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for plot, contents in specs.items():
        for i, spec in enumerate(contents):
            path = out / file_name(plot, i, len(contents))
            path.write_text(vl_convert.vegalite_to_svg(spec))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rlrewrite.report plots",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="*", help="experiments or commits (default: workspace)")
    parser.add_argument("--out", default="reports/plots", help="folder for the SVG files")
    parser.add_argument("--write-template", action="store_true",
                        help=f"write {TEMPLATE}, DVC's offline HTML template, and stop")
    args = parser.parse_args(argv)
    if args.write_template:
        path = write_template()
        named = subprocess.run([sys.executable, "-m", "dvc", "config", "--local",
                                "plots.html_template", path.name],
                               capture_output=True, text=True)
        if named.returncode != 0:
            sys.exit(f"report plots: `dvc config --local plots.html_template` failed: "
                     f"{named.stderr.strip()}")
        print(f"{path} (dvc plots show/diff use it: .dvc/config.local)")
        return
    try:
        specs = plot_specs(args.revisions)
    except PlotsError as exc:
        sys.exit(f"report plots: {exc}")
    empty = [plot for plot, contents in specs.items() if not contents]
    written = render(specs, Path(args.out))
    for path in written:
        print(path)
    if empty:
        print(f"report plots: no data for {', '.join(empty)} (not in this workspace: run the "
              "stage, `dvc checkout`, or name experiments)", file=sys.stderr)
    if not written:
        sys.exit("report plots: nothing to draw")

