"""What a failing test's report says about PostgreSQL (see :mod:`pytest_commons.plugin.report`)."""

from __future__ import annotations

from typing import Any

from pytest_commons.sql.pool import databases_of
from pytest_commons.sql.pool import password_hint as _password_hint


def describe(handle: Any, funcargs: dict[str, Any], kept: bool) -> list[str]:
    """The test's databases and how to connect to them (never the password)."""
    info = handle.info
    password = _password_hint("postgres", kept) if info.password else ""
    lines = []
    for database in databases_of(funcargs, "postgres"):
        state = (
            "kept (--keep-failed): DROP DATABASE it when done, or `pytest-commons down`"
            if kept
            else "dropped after the test (--keep-failed keeps it)"
        )
        lines.append(f"database {database.name}: {state}")
        lines.append(
            f"  connect: psql 'postgresql://{info.user}@{info.host}:{info.port}/{database.name}'"
            + password
        )
    tx = funcargs.get("postgres_tx")
    name = getattr(tx, "commons_db", "")
    if name:
        lines.append(f"database {name} (postgres_tx): the test's work is rolled back")
    return lines
