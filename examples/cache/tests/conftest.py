from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    """An async client on this worker's Redis database (emptied per test by ``redis_url``)."""
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()
