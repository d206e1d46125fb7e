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
    spec="pytest_commons.services.mysql.spec:MysqlSpec",
    backends=("external", "docker", "local"),
    fixtures=("pytest_commons.services.mysql.fixtures", "pytest_commons.services.mysql.aio"),
    report="pytest_commons.services.mysql.report:describe",
    url_help="URL (mysql://user:password@host:port/dbname)",
    default_image="mariadb:11",
    marker_help="the test uses the MySQL/MariaDB service (added automatically).",
    extra="mysql",
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
