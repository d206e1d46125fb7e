import asyncio
import time

import pytest
from redis.asyncio import Redis

from commons_cache import Lock, LockLost, LockNotAcquired


async def test_contending_tasks_take_turns(client: Redis) -> None:
    inside = peak = 0

    async def worker() -> None:
        nonlocal inside, peak
        async with Lock(client, "lock:counter", ttl=5).acquired(timeout=10):
            inside += 1
            peak = max(peak, inside)
            value = int(await client.get("counter") or 0)  # read-modify-write: racy unlocked
            await asyncio.sleep(0)
            await client.set("counter", value + 1)
            inside -= 1

    await asyncio.gather(*(worker() for _ in range(20)))

    assert await client.get("counter") == "20"
    assert peak == 1
    assert await client.exists("lock:counter") == 0


async def test_a_taken_lock_is_refused_until_released(client: Redis) -> None:
    first, second = Lock(client, "lock:job"), Lock(client, "lock:job")
    assert await first.acquire()
    assert not await second.acquire(blocking=False)
    with pytest.raises(LockNotAcquired):
        async with second.acquired(timeout=0.05):
            pass
    await first.release()
    assert await second.acquire(blocking=False)


async def test_an_expired_lock_can_be_taken_and_the_old_holder_cannot_release_it(
    client: Redis,
) -> None:
    stale, fresh = Lock(client, "lock:job", ttl=0.1), Lock(client, "lock:job", ttl=5)
    assert await stale.acquire()

    started = time.monotonic()
    assert await fresh.acquire(timeout=5)  # polls until the 100 ms expiry lets it in
    assert time.monotonic() - started < 5

    with pytest.raises(LockLost):
        await stale.extend()
    with pytest.raises(LockLost):
        await stale.release()
    assert await client.get("lock:job") == fresh.token  # compare-and-delete left it alone


async def test_renewal_keeps_the_lock_past_its_ttl(client: Redis) -> None:
    lock, rival = Lock(client, "lock:long", ttl=0.15), Lock(client, "lock:long")
    async with lock.acquired(timeout=1, renew=True):
        deadline = time.monotonic() + 5
        while lock.renewals < 4:  # > 4 x ttl/3 in: without renewal it would have expired
            assert time.monotonic() < deadline, f"only {lock.renewals} renewals in 5 s"
            await asyncio.sleep(0.01)
        assert not await rival.acquire(blocking=False)
        assert not lock.lost
    assert not await lock.locked()
