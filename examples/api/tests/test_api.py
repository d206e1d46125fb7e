import json

import httpx
from commons_fastapi import Services
from mockserver import HttpRequest, HttpResponse, MockServerClient, VerificationTimes
from pytest_commons.aws import Aws
from pytest_commons.kafka import Kafka
from redis import Redis
from syrupy.assertion import SnapshotAssertion

PRICE_42 = HttpRequest(method="GET", path="/v1/prices/1")


def test_create_then_read_through_the_cache(api: httpx.Client, redis: Redis) -> None:
    created = api.post("/items", json={"name": "lamp", "price_cents": 1999})
    assert created.status_code == 201
    assert created.json() == {"id": 1, "name": "lamp", "price_cents": 1999, "image_key": None}

    assert api.get("/items/1").json()["name"] == "lamp"
    assert json.loads(redis.get("item:1") or b"null")["price_cents"] == 1999  # cached
    assert api.get("/items/2").status_code == 404


def test_each_test_starts_from_an_empty_database(api: httpx.Client) -> None:
    assert api.get("/items").json() == []


def test_created_items_are_published_to_kafka(
    api: httpx.Client, kafka: Kafka, services: Services
) -> None:
    api.post("/items", json={"name": "desk", "price_cents": 25000})
    [message] = kafka.consume(services.topic, 1, group=False)
    assert message.key() == b"1"
    assert json.loads(message.value() or b"") == {
        "type": "item.created", "id": 1, "name": "desk", "price_cents": 25000, "image_key": None
    }  # fmt: skip


def test_images_are_stored_in_s3(api: httpx.Client, aws: Aws, services: Services) -> None:
    api.post("/items", json={"name": "chair", "price_cents": 4500})
    stored = api.put(
        "/items/1/image",
        content=b"\x89PNG...",
        headers={"content-type": "application/octet-stream"},
    )
    assert stored.json() == {"key": "items/1/image", "size": 7}
    body = aws.client("s3").get_object(Bucket=services.bucket, Key="items/1/image")["Body"]
    assert body.read() == b"\x89PNG..."
    assert api.get("/items/1").json()["image_key"] == "items/1/image"


def test_quote_asks_the_partner(api: httpx.Client, mockserver: MockServerClient) -> None:
    mockserver.when(PRICE_42).respond(HttpResponse(status_code=200, body={"price_cents": 1500}))
    api.post("/items", json={"name": "lamp", "price_cents": 1999})

    assert api.get("/items/1/quote").json() == {
        "id": 1, "price_cents": 1999, "partner_price_cents": 1500, "cheaper": "partner"
    }  # fmt: skip
    mockserver.verify(PRICE_42, VerificationTimes.exactly(1))


def test_partner_down_is_a_502(api: httpx.Client, mockserver: MockServerClient) -> None:
    mockserver.when(PRICE_42).respond(HttpResponse(status_code=503))
    api.post("/items", json={"name": "lamp", "price_cents": 1999})
    response = api.get("/items/1/quote")
    assert response.status_code == 502
    assert "503" in response.json()["detail"]


def test_responses_match_their_snapshots(
    api: httpx.Client, mockserver: MockServerClient, snapshot_json: SnapshotAssertion
) -> None:
    mockserver.when(PRICE_42).respond(HttpResponse(status_code=200, body={"price_cents": 2500}))
    api.post("/items", json={"name": "lamp", "price_cents": 1999})
    api.post("/items", json={"name": "desk", "price_cents": 25000})
    assert api.get("/items").json() == snapshot_json(name="list")
    assert api.get("/items/1/quote").json() == snapshot_json(name="quote")
    assert api.get("/items/9").json() == snapshot_json(name="not-found")
    invalid = api.post("/items", json={"name": "", "price_cents": -1})
    assert invalid.status_code == 422
    assert invalid.json() == snapshot_json(name="invalid")
