"""The project's reports, one entry point (`make report`, `make contrast-report`, `make
levers-report` and `make plots` call it):

    python -m rlrewrite.report comparison [--match REGEX] [--group-by KEY] [--reference METHOD]
        methods against a reference over training seeds: reports/comparison.{md,json,png}
    python -m rlrewrite.report rewriter --prefix lever- --out reports/levers.md
        per rewriter run: gate pass rate, collapse and alignment toward π0
    python -m rlrewrite.report plots [REV ...]
        DVC's plots as SVG files, offline

`python -m rlrewrite.report COMMAND --help` lists each one's options.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = ("comparison", "rewriter", "plots")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        sys.exit(f"usage: python -m rlrewrite.report {{{','.join(COMMANDS)}}} [options]\n"
                 + __doc__.split("\n\n")[1])
    importlib.import_module(f"rlrewrite.report.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    main()
