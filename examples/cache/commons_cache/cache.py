"""A JSON cache on Redis: every key under one prefix, a default TTL, single-flight fills."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from commons_cache.lock import Lock

JSON = Any  # whatever json.dumps accepts


class Cache:
    """``await cache.get(key)``, ``set``, ``delete``, ``get_or_set``; keys live under ``prefix:``.

    ``get_or_set`` fills a missing key once across all processes: the first caller takes a
    short :class:`Lock` on the key, computes, stores; the others wait for the lock and read.
    """

    def __init__(self, client: Redis, prefix: str, default_ttl: float = 300.0) -> None:
        self.client, self.prefix, self.default_ttl = client, prefix, default_ttl

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    async def get(self, key: str, default: JSON = None) -> JSON:
        raw = await self.client.get(self.key(key))
        return default if raw is None else json.loads(raw)

    async def set(self, key: str, value: JSON, ttl: float | None = None) -> None:
        """Store ``value`` as JSON for ``ttl`` seconds (default_ttl when None; ms precision)."""
        px = max(1, int((self.default_ttl if ttl is None else ttl) * 1000))
        await self.client.set(self.key(key), json.dumps(value, separators=(",", ":")), px=px)

    async def delete(self, *keys: str) -> int:
        return int(await self.client.delete(*(self.key(k) for k in keys))) if keys else 0

    async def ttl(self, key: str) -> float | None:
        """Seconds left for ``key``; None when it is missing or never expires."""
        ms = await self.client.pttl(self.key(key))
        return ms / 1000 if ms >= 0 else None

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Awaitable[JSON]],
        ttl: float | None = None,
        lock_timeout: float = 10.0,
    ) -> JSON:
        """The cached value, or ``await factory()`` stored for ``ttl`` — computed once even
        when many callers miss at the same time."""
        marker = object()
        if (value := await self.get(key, marker)) is not marker:
            return value
        lock = Lock(self.client, self.key(f"fill:{key}"), ttl=lock_timeout)
        async with lock.acquired(timeout=lock_timeout):
            if (value := await self.get(key, marker)) is not marker:
                return value  # somebody filled it while we waited
            value = await factory()
            await self.set(key, value, ttl)
            return value
