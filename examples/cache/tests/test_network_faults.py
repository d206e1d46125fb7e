"""The cache layer when Redis stops answering: a bounded client timeout turns a stalled network
into a prompt error instead of a hung request, and the same client recovers once the network
does (``faults``, see docs/faults.md)."""

from collections.abc import AsyncIterator

import pytest
from pytest_commons.faults import Faults, Proxy
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeout

from commons_cache import Cache


@pytest.fixture
def network(faults: Faults) -> Proxy:
    """A proxy in front of this worker's Redis database (emptied for the test)."""
    return faults.proxy("redis")


@pytest.fixture
async def cache(network: Proxy) -> AsyncIterator[Cache]:
    client = Redis.from_url(network.url, decode_responses=True, socket_timeout=0.2)
    yield Cache(client, "users")
    await client.aclose()


async def test_a_stalled_network_is_a_timeout_not_a_hang(network: Proxy, cache: Cache) -> None:
    await cache.set("42", {"name": "Ada"})
    filled = []

    async def load() -> dict[str, str]:
        filled.append(1)
        return {"name": "Grace"}

    # the connection stalls: data is dropped until the fault is removed
    with network.timeout(0):
        with pytest.raises(RedisTimeout):
            await cache.get("42")
        with pytest.raises(RedisTimeout):
            await cache.get_or_set("43", load)
    assert filled == []  # nothing was computed against a cache it could not reach

    assert await cache.get("42") == {"name": "Ada"}  # the same client reconnects
    assert await cache.get_or_set("43", load) == {"name": "Grace"}


async def test_a_slow_network_within_the_timeout_still_serves(network: Proxy, cache: Cache) -> None:
    await cache.set("42", {"name": "Ada"})
    with network.latency(50, jitter=10, direction="both"):
        assert await cache.get("42") == {"name": "Ada"}
