"""A headless Chromium for the report test, driven by Playwright.

Debian's ``chromium`` is used (installed with apt-get where it is missing and we are root,
as tests/slurm/cluster.sh installs Slurm); Playwright (a test dependency) only drives it.
Where neither is possible the test is skipped with the reason, except under ``CI=true``,
where a skip would hide the report test: there it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, skip_unless_ci

#: Screenshots and other artifacts of the browser test (ignored by git).
ARTIFACTS = Path(os.environ.get("LINFLOW_TEST_ARTIFACTS", REPO / "tests" / "artifacts"))
INSTALL_TIMEOUT = 900  # seconds for apt-get update + install


def _which() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium() -> str:
    """Path of a Chromium executable, installing Debian's ``chromium`` if needed."""
    path = _which()
    if path:
        return path
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        skip_unless_ci("no chromium here, and installing it needs root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        proc = subprocess.run(["timeout", "-k", "10", str(INSTALL_TIMEOUT), *command], capture_output=True,
                              text=True, env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    path = _which()
    if path is None:
        pytest.fail("apt-get installed chromium, but no chromium executable is on PATH")
    return path


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError as error:
        skip_unless_ci(f"Playwright is not installed ({error}); pip install -e '.[test]'")
    return start
