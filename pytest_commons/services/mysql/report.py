"""What a failing test's report says about MySQL/MariaDB (see
:mod:`pytest_commons.plugin.report`)."""

from __future__ import annotations

from typing import Any

from pytest_commons.sql.pool import databases_of
from pytest_commons.sql.pool import password_hint as _password_hint


def describe(handle: Any, funcargs: dict[str, Any], kept: bool) -> list[str]:
    """The test's databases and how to connect to them (never the password)."""
    info = handle.info
    password = " -p" + _password_hint("mysql", kept) if info.password else ""
    lines = []
    for database in databases_of(funcargs, "mysql"):
        state = (
            "kept (--keep-failed): DROP DATABASE it when done, or `pytest-commons down`"
            if kept
            else "dropped after the test (--keep-failed keeps it)"
        )
        lines.append(f"database {database.name}: {state}")
        lines.append(
            f"  connect: mysql -h {info.host} -P {info.port} -u {info.user}{password} "
            f"{database.name}"
        )
    return lines
