"""Shared helpers for the project's own tests."""

from __future__ import annotations

import os

import pytest

# inner pytest runs must not inherit the outer run's choices
_INNER_ENV_PREFIXES = ("PYTEST_COMMONS_", "PYTEST_XDIST_", "PYTEST_ADDOPTS")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Removes pytest-commons settings (and CI) from the environment for an inner run."""
    for name in list(os.environ):
        if name.startswith(_INNER_ENV_PREFIXES) or name == "CI":
            monkeypatch.delenv(name, raising=False)
    return monkeypatch
