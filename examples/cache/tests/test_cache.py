import asyncio
import time

from redis.asyncio import Redis

from commons_cache import Cache


async def test_values_round_trip_as_json_under_the_prefix(client: Redis) -> None:
    cache = Cache(client, "users")
    await cache.set("42", {"name": "Ada", "roles": ["admin"], "score": 1.5})

    assert await cache.get("42") == {"name": "Ada", "roles": ["admin"], "score": 1.5}
    assert await client.get("users:42") == '{"name":"Ada","roles":["admin"],"score":1.5}'
    assert await cache.get("missing", "default") == "default"
    assert await cache.delete("42", "missing") == 1
    assert await cache.get("42") is None


async def test_prefixes_do_not_see_each_other(client: Redis) -> None:
    users, orders = Cache(client, "users"), Cache(client, "orders")
    await users.set("1", "ada")
    await orders.set("1", {"total": 10})

    assert (await users.get("1"), await orders.get("1")) == ("ada", {"total": 10})


async def test_entries_expire_after_their_ttl(client: Redis) -> None:
    cache = Cache(client, "short", default_ttl=60)
    await cache.set("k", "v", ttl=0.15)
    await cache.set("kept", "v")
    assert 0 < (await cache.ttl("k") or 0) <= 0.15
    assert 59 < (await cache.ttl("kept") or 0) <= 60

    deadline = time.monotonic() + 5
    while await cache.get("k") is not None:  # the observable condition, with a deadline
        assert time.monotonic() < deadline, "key still there 5 s after a 150 ms TTL"
        await asyncio.sleep(0.01)
    assert await cache.get("kept") == "v"


async def test_get_or_set_computes_once_for_concurrent_misses(client: Redis) -> None:
    calls = 0
    release = asyncio.Event()

    async def load() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await release.wait()  # keep the fill in flight while the others miss
        return {"id": 7}

    # separate Cache objects and connections, as separate processes would have
    caches = [Cache(Redis(connection_pool=client.connection_pool), "p") for _ in range(10)]
    tasks = [asyncio.create_task(c.get_or_set("item:7", load, ttl=30)) for c in caches]
    while calls == 0:  # the first caller is inside the factory; the others wait on the lock
        await asyncio.sleep(0.005)
    release.set()

    assert await asyncio.gather(*tasks) == [{"id": 7}] * 10
    assert calls == 1
    assert await Cache(client, "p").get("item:7") == {"id": 7}
    assert await client.exists("p:fill:item:7") == 0  # the fill lock was released
