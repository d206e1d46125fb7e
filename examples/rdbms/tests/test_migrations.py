import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from commons_rdbms import Base, Customer, CustomerRepository
from commons_rdbms.migrate import downgrade, upgrade
from commons_rdbms.testing import customer

pytestmark = pytest.mark.backends("postgres", "mysql", "sqlite")


def tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def drift(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


async def test_migrations_build_the_models_schema_and_tear_it_down(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.connect() as conn:
        assert await conn.run_sync(tables) == {"alembic_version", "customers"}
        assert await conn.run_sync(drift) == []  # the migration matches the models

    async with AsyncSession(engine) as session:
        await CustomerRepository(session).add(customer())
        await session.commit()
        assert await CustomerRepository(session).count() == 1

    await downgrade(engine)
    async with engine.connect() as conn:
        assert Customer.__tablename__ not in await conn.run_sync(tables)
