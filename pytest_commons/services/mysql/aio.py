"""The async twin of the MySQL fixture: ``mysql_async`` (aiomysql, the same fresh database).

Connections open in the test's loop and are closed on that loop
(:class:`~pytest_commons.plugin.aio.LoopResources`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.plugin.aio import LoopResources

if TYPE_CHECKING:
    from pytest_commons.services.mysql.fixtures import MysqlDatabase

__all__ = ["AsyncMysqlDatabase", "mysql_async"]


class AsyncMysqlDatabase:
    """This test's fresh MySQL database, for aiomysql: ``.name``, ``.info``, ``.url``,
    ``await .connect(**kwargs)``."""

    def __init__(self, database: MysqlDatabase, resources: LoopResources) -> None:
        self.database = database
        self.name = database.name
        self.info = database.info
        self._resources = resources

    @property
    def url(self) -> str:
        """``mysql://…`` URL of this database (contains the password, if any)."""
        return self.database.url

    def connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``aiomysql.connect`` (no TLS on loopback)."""
        info = self.info
        kwargs: dict[str, Any] = {
            "host": info.host,
            "port": info.port,
            "user": info.user,
            "password": info.password,
            "db": info.dbname,
            "charset": "utf8mb4",
        }
        kwargs.update(overrides)
        return kwargs

    async def connect(self, **kwargs: Any) -> Any:
        """A new aiomysql connection to this database, closed on its loop after the test."""
        import aiomysql

        conn = await aiomysql.connect(**self.connect_kwargs(**kwargs))
        await self._resources.bind(conn.ensure_closed)
        return conn

    def __repr__(self) -> str:
        return f"<AsyncMysqlDatabase {self.name} on {self.info.describe()}>"


@pytest.fixture
def mysql_async(mysql: MysqlDatabase, _commons_loop_resources: LoopResources) -> AsyncMysqlDatabase:
    """This test's own fresh MySQL/MariaDB database (``mysql``'s), with ``await
    .connect()`` giving aiomysql connections opened in the test's loop and closed there.

    Scope: function. Cost: the ``mysql`` fixture's (≈2 ms plus the schema replay) and one
    connect per ``connect()`` (≈1 ms without TLS).
    """
    return AsyncMysqlDatabase(mysql, _commons_loop_resources)
