"""Every code block in the README and docs/*.md runs: Python blocks are executed here, in file
order and in one namespace per file (a page's examples build on each other), or, when marked as
needing the smoke sweep's results, by tests/test_workflow.py; every other block names its
language, so a reader knows what is a shell command and what is output."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from conftest import REPO

#: Placed on the line before a Python block that reads a finished sweep (results/...):
#: tests/test_workflow.py runs those blocks in the smoke sweep's directory.
NEEDS_SWEEP = "<!-- notebook example: tested by tests/test_workflow.py -->"
# Fenced blocks, also indented ones (inside a list item): the code is dedented.
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\n`]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)
LANGUAGES = {"python", "bash", "text", "yaml"}


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def code_blocks(path: Path):
    """(language, code, needs the sweep) for every fenced block of ``path``, in order."""
    text = path.read_text()
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        yield match["lang"].strip(), textwrap.dedent(match["code"]), before.strip() == NEEDS_SWEEP


def sweep_examples() -> list[tuple[Path, str]]:
    """The Python blocks that need a finished sweep, for tests/test_workflow.py."""
    return [(path, code) for path in doc_files()
            for lang, code, needs_sweep in code_blocks(path) if lang == "python" and needs_sweep]


def test_every_code_block_names_its_language():
    unnamed = [f"{path.relative_to(REPO)}: ```{lang}\n{code[:80]}"
               for path in doc_files() for lang, code, _ in code_blocks(path) if lang not in LANGUAGES]
    assert not unnamed, "code blocks without a known language:\n" + "\n".join(unnamed)


def test_the_sweep_marker_only_precedes_python_blocks():
    for path in doc_files():
        text = path.read_text()
        marked = text.count(NEEDS_SWEEP)
        assert marked == sum(needs for lang, _, needs in code_blocks(path) if lang == "python"), path


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_python_blocks_run(path, tmp_path, monkeypatch):
    blocks = [code for lang, code, needs_sweep in code_blocks(path) if lang == "python" and not needs_sweep]
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict = {"__name__": "__doc_example__"}
    for index, code in enumerate(blocks):
        exec(compile(code, f"{path.name} (python block {index + 1})", "exec"), namespace)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_docs_resolve():
    """Every relative link of the README and docs/ names a file of the repository (and, with
    #anchor, one of its headings); none leaves the checkout."""
    broken = []
    for path in doc_files():
        for target, anchor in re.findall(r"\]\((?!https?://)([^)#\s]*)(?:#([^)\s]+))?\)", path.read_text()):
            file = (path.parent / target).resolve() if target else path
            if not file.is_relative_to(REPO) or not file.exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
            elif anchor and anchor not in {_anchor(h) for h in re.findall(r"^#+ (.*)$", file.read_text(), re.M)}:
                broken.append(f"{path.relative_to(REPO)}: {target}#{anchor}")
    assert not broken, broken


def test_config_examples_are_valid_configs():
    """Every YAML block of the docs that adds datasets, experiments or figures is a valid config
    once merged into config.yaml (the schema's check, as `snakemake` runs it)."""
    import yaml

    from linflow import schema

    base = yaml.safe_load((REPO / "config.yaml").read_text())
    checked = 0
    for path in doc_files():
        for lang, code, _ in code_blocks(path):
            example = yaml.safe_load(code) if lang == "yaml" else None
            if not isinstance(example, dict) or not {"datasets", "experiments", "figures"} & set(example):
                continue
            config = {**base, **{key: {**base.get(key, {}), **value} if isinstance(value, dict) else value
                                 for key, value in example.items()}}
            assert schema.problems(config) == [], f"{path.relative_to(REPO)}:\n{code}"
            checked += 1
    assert checked >= 2  # README and docs/real-data.md
