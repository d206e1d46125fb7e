"""The async twin of the Redis fixture: ``redis_async`` (redis.asyncio, the same FLUSHDB).

Its connections open lazily in the test's loop and are closed on that loop
(:class:`~pytest_commons.plugin.aio.LoopResources`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.plugin.aio import LoopResources

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from pytest_commons.services.redis.spec import RedisInfo

__all__ = ["redis_async"]


def _redis_connection_class(resources: LoopResources) -> type[Any]:
    """redis.asyncio's Connection, closed on its own loop by ``resources``."""
    from redis.asyncio import Connection

    class BoundConnection(Connection):
        async def connect(self) -> None:
            fresh = not self.is_connected
            await super().connect()  # type: ignore[no-untyped-call]
            if fresh:
                await resources.bind(self.disconnect)

    return BoundConnection


@pytest.fixture
def redis_async(
    redis_db: RedisInfo, _redis_empty: object, _commons_loop_resources: LoopResources
) -> aioredis.Redis:
    """A ``redis.asyncio.Redis`` client on this worker's own database, emptied for this test
    (the same FLUSHDB as ``redis``).

    It connects on first use, in the test's event loop, and its connections are closed on that
    loop. Scope: function (a new client per test; making one costs microseconds). Cost: the
    ``redis`` fixture's FLUSHDB plus one connect (≈0.2 ms) on first use.
    """
    from redis.asyncio import ConnectionPool, Redis

    pool = ConnectionPool(
        connection_class=_redis_connection_class(_commons_loop_resources),
        host=redis_db.host,
        port=redis_db.port,
        db=redis_db.db,
        password=redis_db.password or None,
        username=redis_db.username or None,
        socket_connect_timeout=5,
    )
    if redis_db.ssl:
        from redis.asyncio import SSLConnection

        pool.connection_class = type(
            "BoundSSLConnection", (SSLConnection, pool.connection_class), {}
        )
    return Redis(connection_pool=pool)
