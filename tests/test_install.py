"""The README's first command, as a new user runs it: a fresh virtual environment holding only
what that command installs must run the workflow and build the report (snakemake --report
needs pygments, which pytest's own environment would otherwise provide)."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import REPO, copy_repository
from workflow_helpers import docutils_messages, local_env

pytestmark = [pytest.mark.workflow, pytest.mark.slow]
TINY = REPO / "tests" / "config" / "install.yaml"


def readme_install_command() -> str:
    """The README's first shell command up to its install (``... && pip install -e '.[...]'``)."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)[1]
    first = block.strip().splitlines()[0]
    install = re.match(r"(.*?\bpip install [^&]+?)\s*(?:&&|$)", first)
    assert install and "python3 -m venv" in first, f"the README's first command changed: {first}"
    return install[1]


def run(command: str, repo, timeout: int) -> subprocess.CompletedProcess:
    env = {key: value for key, value in local_env().items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(["timeout", "-k", "10", str(timeout), "bash", "-c", command], cwd=repo, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"{command} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def test_readme_install_runs_the_workflow_and_builds_the_report(tmp_path):
    repo = copy_repository(tmp_path / "repo", TINY)
    install = readme_install_command()
    assert install.endswith("pip install -e '.[workflow]'"), install
    run(install, repo, timeout=900)
    activate = ". .venv/bin/activate && "
    # the environment really is fresh: nothing from the test environment leaks into it
    run(activate + "python -c 'import sys; assert sys.prefix.endswith(\".venv\")'", repo, timeout=60)
    run(activate + "snakemake --cores 2", repo, timeout=600)
    report = run(activate + "snakemake --report report.html", repo, timeout=300)
    html = (repo / "report.html").read_text(errors="replace")
    assert "fig4_imbalance_spectrum" in html and len(html) > 100_000
    assert not docutils_messages(report.stdout + report.stderr), "\n".join(docutils_messages(report.stderr))
    assert not docutils_messages(html)
