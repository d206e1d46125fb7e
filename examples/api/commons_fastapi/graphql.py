"""A strawberry GraphQL endpoint over the same table and the same session dependency."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import strawberry
from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import GraphQLRouter
from strawberry.types import Info

from commons_fastapi import app as _app
from commons_fastapi.models import Item

Context = Info[dict[str, Any], None]


@strawberry.type
class ItemType:
    id: int
    name: str
    price_cents: int


def _item(row: Item) -> ItemType:
    return ItemType(id=row.id, name=row.name, price_cents=row.price_cents)


@strawberry.type
class Query:
    @strawberry.field
    async def items(self, info: Context, max_price: int | None = None) -> list[ItemType]:
        statement = select(Item).order_by(Item.id)
        if max_price is not None:
            statement = statement.where(Item.price_cents <= max_price)
        async with info.context["lock"]:  # one session: the resolvers take turns
            return [_item(row) for row in await info.context["session"].scalars(statement)]

    @strawberry.field
    async def item(self, info: Context, id: int) -> ItemType | None:
        async with info.context["lock"]:
            row = await info.context["session"].get(Item, id)
        return None if row is None else _item(row)


def graphql_router() -> GraphQLRouter[dict[str, Any], None]:
    async def context(
        session: Annotated[AsyncSession, Depends(_app.get_session)],
    ) -> dict[str, Any]:
        return {"session": session, "lock": asyncio.Lock()}

    return GraphQLRouter(strawberry.Schema(query=Query), context_getter=context)
