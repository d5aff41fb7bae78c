"""The report test's browser setup: where Chromium cannot be had, a skip, but under CI=true a failure."""

from __future__ import annotations

import pytest

import browser


@pytest.fixture
def no_chromium_no_root(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)


def test_without_chromium_and_root_the_report_test_is_skipped(no_chromium_no_root, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(BaseException) as caught:  # skip and fail are BaseExceptions
        browser.chromium()
    assert caught.type is pytest.skip.Exception and "needs root and apt-get" in str(caught.value)


def test_under_ci_that_skip_is_a_failure(no_chromium_no_root, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(BaseException) as caught:
        browser.chromium()
    assert caught.type is pytest.fail.Exception and "CI=true" in str(caught.value)


def test_an_installed_chromium_is_used(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: "/usr/bin/chromium" if name == "chromium" else None)
    assert browser.chromium() == "/usr/bin/chromium"
