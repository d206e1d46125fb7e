"""A Redis lock: SET NX PX to take it, Lua compare-and-delete / compare-and-extend to let go
or renew, so a holder whose lock expired can never release or extend somebody else's."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import AsyncIterator

from redis.asyncio import Redis

RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


class LockError(Exception):
    """Base of the lock's errors."""


class LockNotAcquired(LockError):
    """The lock stayed taken until the timeout."""


class LockLost(LockError):
    """The lock expired (or was taken over) while we believed we held it."""


class Lock:
    """A distributed lock on ``name`` that expires after ``ttl`` seconds unless renewed.

    ``async with lock.acquired(timeout=5, renew=True):`` holds it, renewing every ``ttl/3``
    in a background task; ``lock.lost`` tells whether a renewal found it gone.
    """

    def __init__(self, client: Redis, name: str, ttl: float = 10.0, poll: float = 0.01) -> None:
        self.client, self.name, self.ttl, self.poll = client, name, ttl, poll
        self.token: str | None = None
        self.renewals = 0
        self.lost = False

    @property
    def _px(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; when blocking, retry until ``timeout`` (None: forever)."""
        token = secrets.token_hex(16)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = self.poll
        while True:
            if await self.client.set(self.name, token, nx=True, px=self._px):
                self.token, self.lost = token, False
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # jitter: no lockstep retries
            delay = min(delay * 2, 0.05)

    async def release(self) -> None:
        """Let go; raises :class:`LockLost` when the lock is no longer ours."""
        token, self.token = self.token, None
        if token is None or not await self.client.eval(RELEASE, 1, self.name, token):
            raise LockLost(f"lock {self.name!r} was not held by us when released")

    async def extend(self, ttl: float | None = None) -> None:
        """Reset the expiry to ``ttl`` (default: the lock's ttl) if the lock is still ours."""
        px = self._px if ttl is None else max(1, int(ttl * 1000))
        if self.token is None or not await self.client.eval(EXTEND, 1, self.name, self.token, px):
            self.lost = True
            raise LockLost(f"lock {self.name!r} expired before it could be extended")
        self.renewals += 1

    async def locked(self) -> bool:
        return bool(await self.client.exists(self.name))

    async def _renew(self) -> None:
        with contextlib.suppress(LockLost):
            while True:
                await asyncio.sleep(self.ttl / 3)
                await self.extend()

    @contextlib.asynccontextmanager
    async def acquired(
        self, timeout: float | None = None, renew: bool = False
    ) -> AsyncIterator[Lock]:
        if not await self.acquire(timeout=timeout):
            raise LockNotAcquired(f"lock {self.name!r} still taken after {timeout} s")
        renewer = asyncio.create_task(self._renew()) if renew else None
        try:
            yield self
        finally:
            if renewer is not None:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
            await self.release()
