"""A pact file served by MockServer: each HTTP interaction becomes an expectation that answers
the recorded request with the recorded response."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pytest_commons.pact import PactFileError, load_pact_into_mockserver

PACT = {
    "consumer": {"name": "web"},
    "provider": {"name": "orders-api"},
    "interactions": [
        {
            "description": "get order 1",
            "providerStates": [{"name": "an order exists", "params": {"id": 1}}],
            "request": {"method": "GET", "path": "/orders/1", "query": {"expand": ["lines"]}},
            "response": {
                "status": 200,
                "headers": {"Content-Type": ["application/json"]},
                "body": {
                    "content": {"id": 1, "status": "open"},
                    "contentType": "application/json",
                    "encoded": False,
                },
            },
            "type": "Synchronous/HTTP",
        },
        {
            "description": "create an order",
            "request": {
                "method": "POST",
                "path": "/orders",
                "headers": {"Content-Type": ["application/json"]},
                "body": {"content": {"sku": "A-1"}, "contentType": "application/json"},
            },
            "response": {"status": 201, "body": "created"},
            "type": "Synchronous/HTTP",
        },
    ],
    "metadata": {"pactSpecification": {"version": "4.0"}},
}


@pytest.fixture
def pact_file(tmp_path: Path) -> Path:
    path = tmp_path / "web-orders-api.json"
    path.write_text(json.dumps(PACT))
    return path


def test_interactions_become_expectations(pact_file: Path, mockserver_url: str) -> None:
    labels = load_pact_into_mockserver(pact_file, mockserver_url)
    assert labels == [
        "web → orders-api: 'get order 1' (given an order exists)",
        "web → orders-api: 'create an order'",
    ]
    got = httpx.get(f"{mockserver_url}/orders/1", params={"expand": "lines"})
    assert got.status_code == 200
    assert got.json() == {"id": 1, "status": "open"}
    created = httpx.post(f"{mockserver_url}/orders", json={"sku": "A-1", "extra": True})
    assert (created.status_code, created.text) == (201, "created")
    # the recorded request is what matches: another body or path is not answered
    assert httpx.post(f"{mockserver_url}/orders", json={"sku": "B-2"}).status_code == 404
    assert httpx.get(f"{mockserver_url}/orders/2").status_code == 404


def test_an_invalid_pact_is_refused_naming_the_file(tmp_path: Path, mockserver_url: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"consumer": {"name": "web"}, "provider": {"name": "x"}}))
    with pytest.raises(PactFileError, match=f"pact file {bad}: has no interactions list"):
        load_pact_into_mockserver(bad, mockserver_url)
