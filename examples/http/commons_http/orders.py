"""A typed client for one upstream API, built on :class:`ApiClient`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypedDict

from commons_http.client import ApiClient


class Line(TypedDict):
    sku: str
    quantity: int
    unit_price: str  # decimal as text: money never goes through float


class Order(TypedDict):
    id: str
    customer_id: int
    status: str
    lines: list[Line]


class OrdersClient:
    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def get(self, order_id: str) -> Order:
        order: Order = self.api.get_json(f"/v1/orders/{order_id}")
        return order

    def create(self, customer_id: int, lines: dict[str, tuple[int, Decimal]], key: str) -> Order:
        payload: dict[str, Any] = {
            "customer_id": customer_id,
            "currency": "EUR",
            "lines": [
                {"sku": sku, "quantity": qty, "unit_price": f"{price:.2f}"}
                for sku, (qty, price) in sorted(lines.items())
            ],
        }
        order: Order = self.api.post_json("/v1/orders", payload, idempotency_key=key)
        return order
