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
async def engine(
    request: pytest.FixtureRequest, sql_db: Any, tmp_path: Any
) -> AsyncIterator[AsyncEngine]:
    """An async engine on a fresh, empty database of ``sql_db``'s backend (for migrations)."""
    if sql_db.backend == "postgres":
        url = async_url(request.getfixturevalue("postgres").url)
    elif sql_db.backend == "mysql":
        url = async_url(request.getfixturevalue("mysql").url)
    else:
        url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(sql_db: Any) -> async_sessionmaker[AsyncSession]:
    """Sessions on the schema ``sql_db`` made once; everything rolls back after the test."""
    maker: async_sessionmaker[AsyncSession] = sql_db.async_sessionmaker
    return maker


@pytest.fixture
def session(sql_db: Any) -> AsyncSession:
    s: AsyncSession = sql_db.async_session
    return s
