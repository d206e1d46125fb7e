"""Helpers shared by the project's own tests (fixtures live in conftest.py)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path


def python_module(
    module: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m MODULE ARGS`` (text output captured, 120 s at most) and returns it."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def commons_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the ``pytest-commons`` command (``python -m pytest_commons.cli``) and returns it."""
    return python_module("pytest_commons.cli", *args, env=env)


def fake_binary(directory: Path, name: str, script: str) -> Path:
    """A stand-in for a broken installation: a shell script where the server binary goes."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
