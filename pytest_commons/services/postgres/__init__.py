"""PostgreSQL: the ``postgres``, ``postgres_tx`` and ``postgres_async`` fixtures.

A fresh database per test, cloned from a template migrated once per run; or one connection
rolled back after each test. Modules: ``spec`` (the server), ``fixtures``, ``aio`` (async twins).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_commons.core.config import Option, ServiceConfig, ServiceMeta

__all__ = ["META", "PostgresConfig"]


@dataclass(frozen=True)
class PostgresConfig(ServiceConfig):
    """PostgreSQL's resolved options (frozen; one field per option of ``META.options``)."""

    #: an explicit directory of the server binaries (``postgres_bindir``)
    bindir: str | None = None


META = ServiceMeta(
    name="postgres",
    title="PostgreSQL",
    spec="PostgresSpec",
    fixtures=("fixtures", "aio"),
    report="report:describe",
    url_help="URL (postgresql://user:password@host:port/dbname)",
    default_image="postgres:16-alpine",
    config=PostgresConfig,
    options=(
        Option(
            "postgres_bindir",
            "Directory with the PostgreSQL server binaries (postgres, initdb) for the local "
            "backend (default: PATH, pg_config --bindir, /usr/lib/postgresql/*/bin).",
            kind="path",
        ),
    ),
)
