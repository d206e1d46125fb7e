"""MySQL/MariaDB: the ``mysql``, ``mysql_tx`` and ``mysql_async`` fixtures.

A fresh database per test, or one connection rolled back after each test. Modules: ``spec``
(the server), ``fixtures``, ``aio`` (the async twin).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_commons.core.config import Option, ServiceConfig, ServiceMeta

__all__ = ["META", "MysqlConfig"]


@dataclass(frozen=True)
class MysqlConfig(ServiceConfig):
    """MySQL/MariaDB's resolved options (frozen; one field per option of ``META.options``)."""

    #: an explicit mariadbd/mysqld binary (``mysql_server``)
    server: str | None = None


META = ServiceMeta(
    name="mysql",
    title="MySQL/MariaDB",
    spec="MysqlSpec",
    fixtures=("fixtures", "aio"),
    report="report:describe",
    url_help="URL (mysql://user:password@host:port/dbname)",
    default_image="mariadb:11",
    config=MysqlConfig,
    options=(
        Option(
            "mysql_server",
            "Path of the mariadbd/mysqld binary for the local backend (default: PATH and the "
            "usual sbin directories).",
            kind="path",
        ),
    ),
)
