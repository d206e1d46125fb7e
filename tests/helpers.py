"""Helpers shared by the project's own tests (fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
import sys


def commons_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the ``pytest-commons`` command (``python -m pytest_commons.cli``) and returns it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_commons.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
