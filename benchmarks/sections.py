"""Each benchmark script owns one section of benchmarks/results.md (between HTML comment
markers), so running one benchmark never erases another's results."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


def write_section(name: str, text: str, path: Path = RESULTS) -> Path:
    """Replace (or append) the section ``name`` of ``path`` with ``text``."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block
    path.write_text(new)
    return path
