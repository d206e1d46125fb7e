"""Redis: the ``redis`` and ``redis_async`` fixtures.

A database index per test, flushed after it. Modules: ``spec`` (the server), ``fixtures``,
``aio`` (the async twin).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_commons.core.config import Option, ServiceConfig, ServiceMeta

__all__ = ["META", "RedisConfig"]


@dataclass(frozen=True)
class RedisConfig(ServiceConfig):
    """Redis's resolved options (frozen; one field per option of ``META.options``)."""

    #: db or server (``redis_isolation``)
    isolation: str = "db"


META = ServiceMeta(
    name="redis",
    title="Redis",
    spec="RedisSpec",
    fixtures=("fixtures", "aio"),
    report="report:describe",
    url_help="URL (redis://[:password@]host:port/db)",
    default_image="redis:7-alpine",
    config=RedisConfig,
    per_worker_when=("redis_isolation", "server"),
    options=(
        Option(
            "redis_isolation",
            "What keeps tests apart on Redis: db (one server for the run, a database index per "
            "xdist worker, FLUSHDB per test) or server (each xdist worker also gets a server of "
            "its own: pub/sub channels, CONFIG, ACL, FUNCTION and SCRIPT are server-global; "
            "≈10 ms and ≈8 MB per worker locally).",
            default="db",
            choices=("db", "server"),
        ),
    ),
)
