"""Running Snakemake from tests: always under a hard timeout, output captured."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path


def local_env() -> dict:
    """Environment of local (non-Slurm) Snakemake runs: this one with tests/bin first on PATH,
    whose `scontrol` fails at once instead of waiting ~9 s for a Slurm controller at every
    Snakemake start (the SLURM executor plugin probes it)."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(__file__).parent / "bin"), os.environ["PATH"]])}


def snakemake(repo: Path, *args: str, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    """``timeout -k 10 <timeout> snakemake <args>`` in ``repo`` (a local run, :func:`local_env`);
    a hang fails instead of hanging CI."""
    cmd = ["timeout", "-k", "10", str(timeout), "snakemake", *args]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=local_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def scheduled_jobs(repo: Path, *args: str) -> Counter:
    """Jobs a dry run would execute, per rule (parsed from Snakemake's job-stats table)."""
    proc = snakemake(repo, "-n", "--cores", "2", *args, timeout=300)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return Counter()
    table = text.split("Job stats:", 1)[1]
    counts = Counter()
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


#: What docutils prints for a caption it cannot parse: "(ERROR/3) Unknown target name ..." in the
#: build output, a "System Message" block in the page.
DOCUTILS_MESSAGE = re.compile(r"\((?:DEBUG|INFO|WARNING|ERROR|SEVERE)/[0-4]\)|System Message|system-message")


def docutils_messages(text: str) -> list[str]:
    """The lines of ``text`` (a report build's output or the report's HTML) holding a docutils
    message; a caption that renders cleanly leaves none."""
    return [line.strip()[:300] for line in text.splitlines() if DOCUTILS_MESSAGE.search(line)]
