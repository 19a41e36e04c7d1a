"""Generated tables inside hand-written Markdown: the text between `<!-- NAME:start -->` and
`<!-- NAME:end -->` is replaced, everything else kept."""

from __future__ import annotations

from pathlib import Path


def fill_markers(path: Path, name: str, text: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = path.read_text()
    if content.count(start) != 1 or content.count(end) != 1:
        raise SystemExit(f"{path} needs one {start} and one {end} line")
    head, rest = content.split(start)
    _, tail = rest.split(end)
    path.write_text(f"{head}{start}\n{text}{end}{tail}")
