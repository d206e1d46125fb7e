"""What a failing test's report says about MySQL/MariaDB (see
:mod:`pytest_commons.plugin.report`)."""

from __future__ import annotations

from typing import Any

from pytest_commons.sql.pool import database_lines


def describe(handle: Any, funcargs: dict[str, Any], kept: bool) -> list[str]:
    """The test's databases and how to connect to them (never the password)."""
    info = handle.info

    def connect(name: str, hint: str) -> str:
        password = f" -p{hint}" if info.password else ""
        return f"mysql -h {info.host} -P {info.port} -u {info.user}{password} {name}"

    return database_lines(funcargs, "mysql", kept, connect)
