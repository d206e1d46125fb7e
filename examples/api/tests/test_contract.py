"""The provider side of the items contract: every interaction the http layer (the consumer,
``http/tests/test_items_contract.py``) recorded in ``pacts/commons-http-commons-items.json`` is
its own test, replayed against the live app on this test's own database and Redis db.

Rename ``price_cents`` in ``ItemOut`` and these fail with Pact's mismatch text.
"""

from typing import Any

import httpx
import pytest
from commons_fastapi import Item
from commons_fastapi.testing import AppDatabase
from pytest_commons.live import LiveServer
from sqlalchemy import insert


@pytest.mark.pact_provider("commons-items", consumer="commons-http")
def test_items_contract(
    pact_interaction: Any, app_server: LiveServer, app_db: AppDatabase, api: httpx.Client
) -> None:
    def item_exists(params: dict[str, Any]) -> None:
        async def add() -> None:
            assert app_db.conn is not None
            await app_db.conn.execute(insert(Item).values(**params))

        app_server.run(add())

    pact_interaction.verify(app_server.url, states={"an item exists": item_exists})
