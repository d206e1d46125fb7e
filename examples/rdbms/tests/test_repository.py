from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commons_rdbms import Customer, CustomerRepository
from commons_rdbms.testing import CustomerRowFactory, customer

pytestmark = pytest.mark.backends("postgres", "mysql", "sqlite")


async def test_crud(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        repo = CustomerRepository(session)
        ada = await repo.add(customer(email="ada@example.com", balance=Decimal("12.50")))
        await session.commit()
    assert ada.id is not None

    async with sessions() as session:  # a new session reads what the database holds
        repo = CustomerRepository(session)
        found = await repo.get_by_email("ada@example.com")
        assert found is not None
        assert (found.id, found.balance) == (ada.id, Decimal("12.50"))
        await repo.update(ada.id, name="Ada Lovelace", active=False)
        await session.commit()

    async with sessions() as session:
        repo = CustomerRepository(session)
        updated = await repo.get(ada.id)
        assert updated is not None
        assert (updated.name, updated.active) == ("Ada Lovelace", False)
        assert await repo.delete(ada.id)
        assert not await repo.delete(ada.id)
        await session.commit()
        assert await repo.get(ada.id) is None


async def test_duplicate_email_is_rejected_by_the_database(session: AsyncSession) -> None:
    repo = CustomerRepository(session)
    await repo.add(customer(email="dup@example.com"))
    with pytest.raises(IntegrityError):
        await repo.add(customer(email="dup@example.com"))
    await session.rollback()
    assert await repo.count() == 0


async def test_offset_and_keyset_pagination(session: AsyncSession) -> None:
    repo = CustomerRepository(session)
    rows = CustomerRowFactory.build_batch(45)
    assert await repo.bulk_add(rows) == 45
    await session.commit()

    first, last = await repo.page(1, size=20), await repo.page(3, size=20)
    assert (first.total, first.pages, len(first.items), len(last.items)) == (45, 3, 20, 5)
    ids = [c.id for c in first.items]
    assert ids == sorted(ids)
    assert [c.email for c in first.items] == [r["email"] for r in rows[:20]]

    seen: list[int] = []
    while batch := await repo.after(seen[-1] if seen else 0, limit=7):
        seen += [c.id for c in batch]
    assert len(seen) == len(set(seen)) == 45

    active = sum(r["active"] for r in rows)
    assert (await repo.page(1, size=50, active=True)).total == active


async def test_bulk_insert_of_a_thousand_rows(session: AsyncSession) -> None:
    repo = CustomerRepository(session)
    assert await repo.bulk_add(CustomerRowFactory.build_batch(1000)) == 1000
    await session.commit()
    assert await repo.count() == 1000


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=100)
rows = st.fixed_dictionaries(
    {
        "email": st.emails().filter(lambda e: len(e) <= 255),
        "name": names,
        "active": st.booleans(),
        "balance": st.decimals(-(10**10) + 1, 10**10 - 1, places=2),
    }
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(row=rows)
async def test_what_is_saved_reads_back_identically(
    sessions: async_sessionmaker[AsyncSession], row: dict[str, Any]
) -> None:
    async with sessions() as session:
        saved = await CustomerRepository(session).add(Customer(**row))
        await session.commit()
    async with sessions() as session:
        loaded = await CustomerRepository(session).get(saved.id)
        assert loaded is not None
        assert {k: getattr(loaded, k) for k in row} == row
        await session.execute(delete(Customer))  # the next example starts empty
        await session.commit()
