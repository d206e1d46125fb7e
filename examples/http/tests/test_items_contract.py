"""The consumer side of the items contract: ItemsClient against Pact's mock server.

Each passing test adds its interactions to ``examples/pacts/commons-http-commons-items.json``
(written at the end of the run, sorted: the same tests write the same bytes). The fastapi layer
verifies that file against the live app on real services (``api/tests/test_contract.py``).
"""

import pytest
from pact import match

from commons_http import ApiClient, ItemsClient

pytestmark = pytest.mark.pact(consumer="commons-http", provider="commons-items")


def test_get_an_item(pact):
    (
        pact.upon_receiving("get item 7")
        .given("an item exists", id=7, name="Lamp", price_cents=1250)
        .with_request("GET", "/items/7")
        .will_respond_with(200)
        .with_body(
            {"id": match.int(7), "name": match.str("Lamp"), "price_cents": match.int(1250)},
            "application/json",
        )
    )
    with pact.serve() as srv, ApiClient(str(srv.url), timeout=2) as api:
        item = ItemsClient(api).get(7)
    assert item == {"id": 7, "name": "Lamp", "price_cents": 1250}


def test_a_missing_item_is_none(pact):
    pact.upon_receiving("get a missing item").with_request("GET", "/items/404").will_respond_with(
        404
    )
    with pact.serve() as srv, ApiClient(str(srv.url), timeout=2) as api:
        assert ItemsClient(api).get(404) is None
