"""A typed client for the items API (the fastapi layer): the consumer side of a Pact."""

from __future__ import annotations

from typing import TypedDict

from commons_http.client import ApiClient, ApiError


class Item(TypedDict):
    id: int
    name: str
    price_cents: int


class ItemsClient:
    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def get(self, item_id: int) -> Item | None:
        """The item, or None when the API says it does not exist."""
        try:
            data = self.api.get_json(f"/items/{item_id}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return Item(
            id=int(data["id"]), name=str(data["name"]), price_cents=int(data["price_cents"])
        )
