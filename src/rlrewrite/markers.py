"""Generated tables inside hand-written Markdown under docs/: the text between
`<!-- NAME:start -->` and `<!-- NAME:end -->` is replaced, everything else kept. README is the
hand-written entry point and never a target (tests/test_readme.py)."""

from __future__ import annotations

from pathlib import Path


def fill_markers(path: Path, name: str, text: str) -> None:
    if Path(path).name.lower() == "readme.md":
        raise SystemExit(f"{path}: README is written by hand; generated tables go to docs/ "
                         "or reports/")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = path.read_text()
    if content.count(start) != 1 or content.count(end) != 1:
        raise SystemExit(f"{path} needs one {start} and one {end} line")
    head, rest = content.split(start)
    _, tail = rest.split(end)
    path.write_text(f"{head}{start}\n{text}{end}{tail}")
