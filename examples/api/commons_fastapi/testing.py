"""Test support: the app's database side of a test, on the live server's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pytest_commons.live import LiveServer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool


class AppDatabase:
    """The app's side of the test's database: a connection on the server's event loop inside
    a transaction; each request gets a session that joins it (its commits are SAVEPOINTs)."""

    def __init__(self, server: LiveServer, url: str) -> None:
        self.server = server
        self.engine = create_async_engine(url, poolclass=NullPool)
        self.conn: AsyncConnection | None = None
        server.run(self._begin())

    async def _begin(self) -> None:
        self.conn = await self.engine.connect()
        await self.conn.begin()

    async def _end(self) -> None:
        if self.conn is not None:
            await self.conn.rollback()
            await self.conn.close()
            self.conn = None

    def reset(self) -> None:
        """Roll back everything the app wrote and begin again (per schemathesis case)."""
        self.server.run(self._end())
        self.server.run(self._begin())

    def close(self) -> None:
        self.server.run(self._end())
        self.server.run(self.engine.dispose())

    async def session(self) -> AsyncIterator[AsyncSession]:
        """The ``get_session`` override."""
        async with AsyncSession(
            bind=self.conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as session:
            yield session
