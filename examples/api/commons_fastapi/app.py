"""The items API. Its services come from two dependencies — ``get_session`` (an SQLAlchemy
``AsyncSession``) and ``get_services`` (Redis URL, Kafka events, S3, the partner API) — which
production wires from its settings and tests override with their own per-test namespaces."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Body, Depends, FastAPI, HTTPException, Path
from pydantic import BaseModel, Field, field_validator
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from commons_fastapi.models import Item

CACHE_TTL_MS = 60_000
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # the column is a 32-bit integer


@dataclass
class Services:
    """What the app talks to besides its database."""

    redis_url: str
    producer: Any  # confluent_kafka.Producer
    topic: str
    s3: Any  # a boto3 S3 client
    bucket: str
    partner_url: str

    def publish(self, key: str, event: dict[str, Any]) -> None:
        self.producer.produce(self.topic, key=key, value=json.dumps(event).encode())
        self.producer.flush(5)


async def get_session() -> AsyncIterator[AsyncSession]:
    """Production builds an engine from its settings; tests override this."""
    raise RuntimeError("get_session is not configured")
    yield  # pragma: no cover


def get_services() -> Services:
    raise RuntimeError("get_services is not configured")


Session = Annotated[AsyncSession, Depends(get_session)]
Deps = Annotated[Services, Depends(get_services)]


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=50, pattern=r"^[^\x00]+$")
    price_cents: int = Field(ge=0, le=2**31 - 1)

    @field_validator("price_cents", mode="before")
    @classmethod
    def json_integer(cls, value: Any) -> Any:
        """A JSON Schema integer: 12 and 12.0, never `false` or "12" (which pydantic's lax
        mode takes; strict mode refuses 12.0) — both found by schemathesis."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be an integer")
        return value


class ItemOut(BaseModel):
    id: int
    name: str
    price_cents: int
    image_key: str | None = None


class Quote(BaseModel):
    id: int
    price_cents: int
    partner_price_cents: int
    cheaper: str


class ImageOut(BaseModel):
    key: str
    size: int


def _out(item: Item) -> ItemOut:
    return ItemOut(
        id=item.id, name=item.name, price_cents=item.price_cents, image_key=item.image_key
    )


async def _load(session: AsyncSession, item_id: int) -> Item:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, f"item {item_id} not found")
    return item


def create_app() -> FastAPI:
    app = FastAPI(title="commons items", version="1.0.0")

    @app.post(
        "/items",
        status_code=201,
        responses={400: {"description": "body is not JSON"}, 422: {"description": "invalid item"}},
    )
    async def create_item(body: ItemIn, session: Session, deps: Deps) -> ItemOut:
        item = Item(name=body.name, price_cents=body.price_cents)
        session.add(item)
        await session.commit()
        out = _out(item)
        await run_in_threadpool(
            deps.publish, str(item.id), {"type": "item.created", **out.model_dump()}
        )
        return out

    @app.get("/items")
    async def list_items(session: Session) -> list[ItemOut]:
        rows = await session.scalars(select(Item).order_by(Item.id))
        return [_out(item) for item in rows]

    @app.get("/items/{item_id}", responses={404: {"description": "no such item"}})
    async def get_item(item_id: ItemId, session: Session, deps: Deps) -> ItemOut:
        async with Redis.from_url(deps.redis_url) as cache:
            if (hit := await cache.get(f"item:{item_id}")) is not None:
                return ItemOut.model_validate_json(hit)
            out = _out(await _load(session, item_id))
            await cache.set(f"item:{item_id}", out.model_dump_json(), px=CACHE_TTL_MS)
            return out

    @app.put(
        "/items/{item_id}/image",
        responses={404: {"description": "no such item"}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "minLength": 1}}
                },
            }
        },
    )
    async def put_image(
        item_id: ItemId,
        session: Session,
        deps: Deps,
        data: Annotated[bytes, Body(media_type="application/octet-stream")],
    ) -> ImageOut:
        item = await _load(session, item_id)
        key = f"items/{item_id}/image"
        await run_in_threadpool(deps.s3.put_object, Bucket=deps.bucket, Key=key, Body=data)
        item.image_key = key
        await session.commit()
        async with Redis.from_url(deps.redis_url) as cache:
            await cache.delete(f"item:{item_id}")
        return ImageOut(key=key, size=len(data))

    @app.get(
        "/items/{item_id}/quote",
        responses={404: {"description": "no such item"}, 502: {"description": "partner down"}},
    )
    async def quote(item_id: ItemId, session: Session, deps: Deps) -> Quote:
        item = await _load(session, item_id)
        async with httpx.AsyncClient(base_url=deps.partner_url, timeout=2) as partner:
            try:
                response = await partner.get(f"/v1/prices/{item_id}")
                response.raise_for_status()
                theirs = int(response.json()["price_cents"])
            except (httpx.HTTPError, KeyError, ValueError) as error:
                raise HTTPException(502, f"partner API: {error}") from error
        cheaper = "ours" if item.price_cents <= theirs else "partner"
        return Quote(
            id=item.id, price_cents=item.price_cents, partner_price_cents=theirs, cheaper=cheaper
        )

    from commons_fastapi.graphql import graphql_router

    app.include_router(graphql_router(), prefix="/graphql", include_in_schema=False)
    return app


app = create_app()
