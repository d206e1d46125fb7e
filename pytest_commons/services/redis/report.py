"""What a failing test's report says about Redis (see :mod:`pytest_commons.plugin.report`)."""

from __future__ import annotations

from typing import Any


def describe(handle: Any, funcargs: dict[str, Any], kept: bool) -> list[str]:
    """The worker's database index, its key count now, and how to look at it."""
    client = funcargs.get("_redis_empty")
    if client is None:
        return []
    db = client.connection_pool.connection_kwargs.get("db", 0)
    info = handle.info
    auth = " --askpass" if info.password else ""
    return [
        f"database {db}: {client.dbsize()} key(s) now; emptied before the worker's next test "
        "(one database per worker: not kept by --keep-failed)",
        f"  look: redis-cli -h {info.host} -p {info.port}{auth} -n {db}",
    ]
