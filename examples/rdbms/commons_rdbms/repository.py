"""CRUD, pagination and bulk insert for customers on an ``AsyncSession``.

The repository flushes but never commits: the caller owns the transaction (unit of work).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from commons_rdbms.models import Customer


@dataclass(frozen=True)
class Page:
    """One page of an ordered listing."""

    items: Sequence[Customer]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.size)


class CustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, customer: Customer) -> Customer:
        self.session.add(customer)
        await self.session.flush()  # assigns the id
        return customer

    async def get(self, customer_id: int) -> Customer | None:
        return await self.session.get(Customer, customer_id)

    async def get_by_email(self, email: str) -> Customer | None:
        result = await self.session.execute(select(Customer).where(Customer.email == email))
        return result.scalar_one_or_none()

    async def update(self, customer_id: int, **changes: Any) -> Customer | None:
        customer = await self.get(customer_id)
        if customer is not None:
            for field, value in changes.items():
                setattr(customer, field, value)
            await self.session.flush()
        return customer

    async def delete(self, customer_id: int) -> bool:
        result = await self.session.execute(delete(Customer).where(Customer.id == customer_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def count(self, *, active: bool | None = None) -> int:
        query = select(func.count()).select_from(Customer)
        if active is not None:
            query = query.where(Customer.active == active)
        return int((await self.session.execute(query)).scalar_one())

    async def page(self, number: int = 1, size: int = 20, *, active: bool | None = None) -> Page:
        """Page ``number`` (from 1) of customers ordered by id (offset pagination)."""
        query = select(Customer).order_by(Customer.id).limit(size).offset((number - 1) * size)
        if active is not None:
            query = query.where(Customer.active == active)
        items = (await self.session.scalars(query)).all()
        return Page(items, await self.count(active=active), number, size)

    async def after(self, last_id: int = 0, limit: int = 20) -> Sequence[Customer]:
        """The ``limit`` customers after id ``last_id`` (keyset pagination: stable, index-only)."""
        query = select(Customer).where(Customer.id > last_id).order_by(Customer.id).limit(limit)
        return (await self.session.scalars(query)).all()

    async def bulk_add(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert many rows in one executemany (SQLAlchemy batches them per dialect)."""
        rows = [dict(row) for row in rows]
        if rows:
            await self.session.execute(insert(Customer), rows)
        return len(rows)
