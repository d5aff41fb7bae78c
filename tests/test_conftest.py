"""The CI guard of environment-dependent tests: under CI=true a skip is a failure."""

from __future__ import annotations

import pytest

from conftest import skip_unless_ci


def test_skip_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no cluster"):
        skip_unless_ci("no cluster")


def test_failure_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true.*no cluster"):
        skip_unless_ci("no cluster")
