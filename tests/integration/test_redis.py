"""Redis against a real server: per-test emptiness, worker database, URL, faults."""

from __future__ import annotations

import pytest
import redis as redis_py

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.redis.spec import RedisInfo


@pytest.mark.parametrize("value", ["first", "second"])
def test_each_test_starts_empty(redis: redis_py.Redis, value: str) -> None:
    assert redis.dbsize() == 0
    redis.set("key", value, ex=60)
    assert redis.get("key") == value.encode()


def test_url_points_at_the_same_emptied_database(redis_url: str, redis: redis_py.Redis) -> None:
    other = redis_py.Redis.from_url(redis_url)
    try:
        other.set("via-url", 1)
        assert redis.get("via-url") == b"1"
    finally:
        other.close()


def test_async_client_from_url(redis_url: str) -> None:
    import asyncio

    import redis.asyncio as aredis

    async def main() -> bytes | None:
        client = aredis.Redis.from_url(redis_url)
        try:
            await client.set("a", "b")
            return await client.get("a")
        finally:
            await client.aclose()

    assert asyncio.run(main()) == b"b"


def test_worker_owns_its_database(
    redis_db: RedisInfo, redis_service: ServiceHandle[RedisInfo]
) -> None:
    import os

    if redis_service.owned:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        assert redis_db.db == int(worker[2:])
    else:
        assert redis_db.db != 0
