"""What a failing test's report says about PostgreSQL (see :mod:`pytest_commons.plugin.report`)."""

from __future__ import annotations

from typing import Any

from pytest_commons.sql.pool import database_lines


def describe(handle: Any, funcargs: dict[str, Any], kept: bool) -> list[str]:
    """The test's databases and how to connect to them (never the password)."""
    info = handle.info

    def connect(name: str, hint: str) -> str:
        url = f"postgresql://{info.user}@{info.host}:{info.port}/{name}"
        return f"psql '{url}'" + (hint if info.password else "")

    lines = database_lines(funcargs, "postgres", kept, connect)
    name = getattr(funcargs.get("postgres_tx"), "commons_db", "")
    if name:
        lines.append(f"database {name} (postgres_tx): the test's work is rolled back")
    return lines
