from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from commons_rdbms import Base

ASYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mysql+aiomysql",
    "sqlite": "sqlite+aiosqlite",
}


def async_url(url: Any) -> URL:
    """``sql_db``'s URL with the async driver this layer runs on."""
    url = url if isinstance(url, URL) else make_url(str(url))
    url = url.set(drivername=ASYNC_DRIVERS[url.get_backend_name()])
    return (
        url.update_query_dict({"charset": "utf8mb4"}) if url.drivername.startswith("mysql") else url
    )


@pytest.fixture
async def engine(sql_db: Any) -> AsyncIterator[AsyncEngine]:
    """An async engine on this test's database (a fresh one on each backend)."""
    engine = create_async_engine(async_url(sql_db.url))
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory on the database, with the schema created from the models."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session
