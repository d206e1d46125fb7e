"""Redis: the ``redis`` and ``redis_async`` fixtures.

A database index per test, flushed after it. Modules: ``spec`` (the server), ``fixtures``,
``aio`` (the async twin).
"""

from __future__ import annotations

from pytest_commons.core.config import ServiceMeta

__all__ = ["META"]

META = ServiceMeta(
    name="redis",
    title="Redis",
    spec="pytest_commons.services.redis.spec:RedisSpec",
    backends=("external", "docker", "local"),
    fixtures=("pytest_commons.services.redis.fixtures", "pytest_commons.services.redis.aio"),
    url_help="URL (redis://[:password@]host:port/db)",
    default_image="redis:7-alpine",
    marker_help="the test uses the Redis service (added automatically).",
    extra="redis",
)
