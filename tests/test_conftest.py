"""The CI guard of environment-dependent tests: under CI=true a skip is a failure."""

from __future__ import annotations

import pytest

from conftest import skip_unless_ci


def test_skip_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(BaseException) as raised:
        skip_unless_ci("no cluster")
    assert raised.type is pytest.skip.Exception and "no cluster" in str(raised.value)


def test_failure_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(BaseException) as raised:  # a skip would be caught here too, and rejected
        skip_unless_ci("no cluster")
    assert raised.type is pytest.fail.Exception and "CI=true" in str(raised.value) and "no cluster" in str(raised.value)
