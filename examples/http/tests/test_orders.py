import json
from decimal import Decimal
from typing import Any

from mockserver import Body, HttpRequest, HttpResponse, MockServerClient, VerificationTimes

from commons_http import ApiClient, OrdersClient

CREATE = HttpRequest(method="POST", path="/v1/orders")


def sent_json(mockserver: MockServerClient, request: HttpRequest) -> list[Any]:
    """The JSON bodies MockServer received for ``request``, in order."""
    bodies = []
    for recorded in mockserver.retrieve_recorded_requests(request):
        body = recorded.body if isinstance(recorded, HttpRequest) else recorded["body"]
        if isinstance(body, Body):
            body = body.json if body.json is not None else body.string
        bodies.append(json.loads(body) if isinstance(body, str) else body)
    return bodies


def test_create_order_sends_the_documented_payload(
    mockserver: MockServerClient, api: ApiClient, snapshot_json: Any
) -> None:
    created = {"id": "o-1", "customer_id": 7, "status": "pending", "lines": []}
    mockserver.when(CREATE).respond(HttpResponse(status_code=201, body=created))

    order = OrdersClient(api).create(
        7, {"sku-b": (1, Decimal("9.5")), "sku-a": (2, Decimal("19.99"))}, key="k-1"
    )

    assert order == created
    mockserver.verify(
        HttpRequest(method="POST", path="/v1/orders", headers={"Idempotency-Key": ["k-1"]}),
        VerificationTimes.once(),
    )
    assert sent_json(mockserver, CREATE) == [snapshot_json]  # the wire contract, reviewed in git
