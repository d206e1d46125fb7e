"""The rdbms layer over a network that resets its connections: the failed unit of work raises,
the pool drops the dead connection, and the next unit of work reconnects (``faults``, see
docs/faults.md)."""

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from pytest_commons.faults import Faults, Proxy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from commons_rdbms import Base, CustomerRepository
from commons_rdbms.testing import customer


@pytest.fixture
def database(faults: Faults) -> Proxy:
    """A proxy in front of this test's own PostgreSQL database."""
    return faults.proxy("postgres")


@pytest.fixture
async def sessions(database: Proxy) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(
        make_url(database.url).set(drivername="postgresql+psycopg"), pool_pre_ping=True
    )
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def test_a_reset_fails_one_unit_of_work_and_the_next_reconnects(
    database: Proxy, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        await CustomerRepository(session).add(customer(email="ada@example.com"))
        await session.commit()

    with database.reset_peer():  # connections are cut when the server next answers
        async with sessions() as session:
            # the pooled connection fails its pre-ping, and so does the new one it opens
            with pytest.raises(DBAPIError, match="server closed the connection unexpectedly"):
                await CustomerRepository(session).count()

    async with sessions() as session:  # the network is back: a new connection, same data
        repo = CustomerRepository(session)
        assert await repo.count() == 1
        await repo.add(customer(email="grace@example.com", balance=Decimal("1.00")))
        await session.commit()
        assert await repo.count() == 2
