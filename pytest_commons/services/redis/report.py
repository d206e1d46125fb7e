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
    look = f"redis-cli -h {info.host} -p {info.port}{auth} -n"
    if kept:  # the index is reserved now, so the report can name it; teardown moves the keys
        request = funcargs.get("request")
        nodeid = request.node.nodeid if request is not None else "a failing test"
        index = handle.spec.reserve_kept(info.with_db(db), nodeid)
        client.commons_kept_index = index
        return [
            f"database {db}: {client.dbsize()} key(s) now; kept (--keep-failed): moved to "
            f"database {index} after the test",
            f"  look: {look} {index}",
        ]
    return [
        f"database {db}: {client.dbsize()} key(s) now; emptied before the worker's next test "
        "(--keep-failed keeps the keys)",
        f"  look: {look} {db}",
    ]
