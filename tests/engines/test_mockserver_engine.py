"""The in-process MockServer engine, driven through the official ``mockserver-client``.

Control-plane calls go through :class:`mockserver.MockServerClient` exactly as a test
against a real MockServer would; mocked traffic goes through httpx.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

mockserver = pytest.importorskip("mockserver")

from mockserver import (  # noqa: E402
    Body,
    Delay,
    HttpError,
    HttpForward,
    HttpOverrideForwardedRequest,
    HttpRequest,
    HttpResponse,
    KeyToMultiValue,
    MockServerClient,
    MockServerError,
    MockServerVerificationError,
    Times,
    TimeToLive,
    VerificationTimes,
)

from pytest_commons.services.mockserver.engine import MockServerEngine  # noqa: E402
from pytest_commons.services.mockserver.spec import open_client  # noqa: E402


@pytest.fixture(scope="module")
def engine() -> Iterator[MockServerEngine]:
    with MockServerEngine() as running:
        yield running


@pytest.fixture(scope="module")
def client_session(engine: MockServerEngine) -> Iterator[MockServerClient]:
    with open_client(engine.host, engine.port) as client:
        yield client


@pytest.fixture
def client(engine: MockServerEngine, client_session: MockServerClient) -> MockServerClient:
    engine.reset()
    return client_session


@pytest.fixture(scope="module")
def http_session(engine: MockServerEngine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=10) as session:
        yield session


@pytest.fixture
def http(http_session: httpx.Client, client: MockServerClient) -> httpx.Client:
    return http_session


# --------------------------------------------------------------------------- lifecycle


def test_engine_lifecycle_and_status() -> None:
    engine = MockServerEngine().start()  # how fast: benchmarks/bench_mockserver.py
    try:
        assert engine.running
        assert engine.url == f"http://127.0.0.1:{engine.port}"
        with open_client(engine.host, engine.port) as client:
            assert client.has_started(attempts=1)
            assert client.bind(0) == [engine.port]
            with pytest.raises(MockServerError):
                client.bind(1)
        status = httpx.put(f"{engine.url}/mockserver/status")
        assert status.status_code == 200
        assert status.json() == {"ports": [engine.port]}
    finally:
        engine.stop()
    assert not engine.running
    with pytest.raises(httpx.ConnectError):
        httpx.put(f"{engine.url}/mockserver/status")


def test_engine_refuses_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        MockServerEngine(host="0.0.0.0")


def test_engine_binds_loopback_only(engine: MockServerEngine) -> None:
    assert engine.host == "127.0.0.1"
    assert engine._server is not None
    assert engine._server.server_address[0] == "127.0.0.1"


def test_stop_closes_idle_keep_alive_connections() -> None:
    engine = MockServerEngine().start()
    with httpx.Client(base_url=engine.url) as session:
        assert session.get("/idle").status_code == 404
        started = time.perf_counter()
        engine.stop()
        assert time.perf_counter() - started < 2


def test_direct_reset_clears_every_expectation(
    engine: MockServerEngine, client: MockServerClient
) -> None:
    """The in-process reset (no HTTP round trip; its cost is in benchmarks/bench_mockserver.py)."""
    for index in range(50):
        client.when(HttpRequest(path=f"/r{index}")).respond(HttpResponse(status_code=200))
    assert len(client.retrieve_active_expectations()) == 50
    engine.reset()
    assert client.retrieve_active_expectations() == []


# --------------------------------------------------------------------------- expectations


def test_expectation_round_trip(client: MockServerClient, http: httpx.Client) -> None:
    created = client.when(HttpRequest(method="GET", path="/hello")).respond(
        HttpResponse(status_code=200, body="world")
    )
    assert len(created) == 1
    assert created[0].id
    assert created[0].times is not None
    assert created[0].times.unlimited
    response = http.get("/hello")
    assert response.status_code == 200
    assert response.text == "world"
    assert http.post("/hello").status_code == 404


def test_upsert_status_and_body_is_the_upserted_list(engine: MockServerEngine) -> None:
    engine.reset()
    document = [
        {"httpRequest": {"path": "/a"}, "httpResponse": {"statusCode": 201}},
        {"id": "fixed", "httpRequest": {"path": "/b"}, "httpResponse": {"body": "b"}},
    ]
    response = httpx.put(f"{engine.url}/mockserver/expectation", json=document)
    assert response.status_code == 201
    body = response.json()
    assert [e["httpRequest"]["path"] for e in body] == ["/a", "/b"]
    assert body[1]["id"] == "fixed"
    assert body[0]["times"] == {"unlimited": True}
    single = httpx.put(
        f"{engine.url}/mockserver/expectation",
        json={"httpRequest": {"path": "/c"}, "httpResponse": {}},
    )
    assert single.status_code == 201
    assert len(single.json()) == 1


def test_upsert_by_id_replaces(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/item")).with_id("item").respond(HttpResponse(body="one"))
    client.when(HttpRequest(path="/item")).with_id("item").respond(HttpResponse(body="two"))
    assert http.get("/item").text == "two"
    assert len(client.retrieve_active_expectations()) == 1


def test_priority_then_creation_order(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/p")).respond(HttpResponse(body="first"))
    client.when(HttpRequest(path="/p")).respond(HttpResponse(body="second"))
    assert http.get("/p").text == "first"
    client.when(HttpRequest(path="/p"), priority=10).respond(HttpResponse(body="urgent"))
    assert http.get("/p").text == "urgent"


def test_times_are_consumed(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/twice"), Times.exactly(2)).respond(HttpResponse(body="ok"))
    assert [http.get("/twice").status_code for _ in range(3)] == [200, 200, 404]
    assert client.retrieve_active_expectations() == []


def test_remaining_times_shown_in_active_expectations(
    client: MockServerClient, http: httpx.Client
) -> None:
    client.when(HttpRequest(path="/thrice"), Times.exactly(3)).respond(HttpResponse())
    http.get("/thrice")
    (active,) = client.retrieve_active_expectations()
    assert active.times is not None
    assert active.times.remaining_times == 2


def test_time_to_live_expires(client: MockServerClient, http: httpx.Client) -> None:
    ttl = TimeToLive(time_unit="MILLISECONDS", time_to_live=150, unlimited=False)
    client.when(HttpRequest(path="/ttl"), time_to_live=ttl).respond(HttpResponse(body="fresh"))
    assert http.get("/ttl").status_code == 200
    time.sleep(0.25)
    assert http.get("/ttl").status_code == 404


# --------------------------------------------------------------------------- request matching


def test_path_regex_and_method_regex(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(method="P.*", path="/users/[0-9]+")).respond(HttpResponse(body="u"))
    assert http.post("/users/42").status_code == 200
    assert http.put("/users/7").status_code == 200
    assert http.get("/users/42").status_code == 404
    assert http.post("/users/abc").status_code == 404


def test_negated_path_and_method(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(method="!DELETE", path="!/private")).respond(HttpResponse(body="x"))
    assert http.get("/public").status_code == 200
    assert http.get("/private").status_code == 404
    assert http.delete("/public").status_code == 404


def test_path_parameters(client: MockServerClient, http: httpx.Client) -> None:
    client.when(
        HttpRequest(path="/orders/{orderId}/lines/{line}", path_parameters={"orderId": ["[A-Z]+"]})
    ).respond(HttpResponse(body="order"))
    assert http.get("/orders/ABC/lines/3").status_code == 200
    assert http.get("/orders/123/lines/3").status_code == 404
    assert http.get("/orders/ABC").status_code == 404


def test_query_parameters_object_and_array_forms(
    client: MockServerClient, http: httpx.Client
) -> None:
    client.when(HttpRequest(path="/q", query_string_parameters={"a": ["1"], "b": ["x.*"]})).respond(
        HttpResponse(body="object")
    )
    client.when(
        HttpRequest(
            path="/q2",
            query_string_parameters=[KeyToMultiValue(name="tag", values=["red", "blue"])],
        )
    ).respond(HttpResponse(body="array"))
    assert http.get("/q", params={"a": "1", "b": "xyz", "extra": "ignored"}).text == "object"
    assert http.get("/q", params={"a": "2", "b": "xyz"}).status_code == 404
    assert http.get("/q2", params=[("tag", "blue"), ("tag", "red")]).text == "array"
    assert http.get("/q2", params={"tag": "red"}).status_code == 404


def test_query_parameter_negation(engine: MockServerEngine, http: httpx.Client) -> None:
    document = {
        "httpRequest": {
            "path": "/neg",
            "queryStringParameters": {"!debug": [], "mode": ["!test"]},
        },
        "httpResponse": {"body": "neg"},
    }
    assert httpx.put(f"{engine.url}/mockserver/expectation", json=document).status_code == 201
    assert http.get("/neg", params={"mode": "prod"}).status_code == 200
    assert http.get("/neg", params={"mode": "test"}).status_code == 404
    assert http.get("/neg", params={"mode": "prod", "debug": "1"}).status_code == 404


def test_headers_regex_case_insensitive_names(client: MockServerClient, http: httpx.Client) -> None:
    client.when(
        HttpRequest(path="/h").with_header("x-api-key", "key-[0-9]+").with_header("!X-Forbidden")
    ).respond(HttpResponse(body="h"))
    assert http.get("/h", headers={"X-API-KEY": "key-123"}).status_code == 200
    assert http.get("/h", headers={"X-Api-Key": "nope"}).status_code == 404
    assert http.get("/h", headers={"X-Api-Key": "key-1", "X-Forbidden": "1"}).status_code == 404


def test_headers_array_form_over_rest(engine: MockServerEngine, http: httpx.Client) -> None:
    document = {
        "httpRequest": {"path": "/ha", "headers": [{"name": "Accept", "values": ["text/.*"]}]},
        "httpResponse": {"body": "ha"},
    }
    assert httpx.put(f"{engine.url}/mockserver/expectation", json=document).status_code == 201
    assert http.get("/ha", headers={"Accept": "text/plain"}).status_code == 200
    assert http.get("/ha", headers={"Accept": "application/json"}).status_code == 404


def test_cookies(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/c").with_cookie("session", "s-[a-z]+")).respond(
        HttpResponse(body="c")
    )
    assert http.get("/c", headers={"Cookie": "other=1; session=s-abc"}).status_code == 200
    assert http.get("/c", headers={"Cookie": "session=123"}).status_code == 404
    assert http.get("/c").status_code == 404


def test_keep_alive_matcher(client: MockServerClient, engine: MockServerEngine) -> None:
    client.when(HttpRequest(path="/ka", keep_alive=False)).respond(HttpResponse(body="closing"))
    assert httpx.get(f"{engine.url}/ka", headers={"Connection": "close"}).status_code == 200
    with httpx.Client() as session:
        assert session.get(f"{engine.url}/ka").status_code == 404


def test_not_request_matcher(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/health", not_request=True)).respond(HttpResponse(body="other"))
    assert http.get("/anything").text == "other"
    assert http.get("/health").status_code == 404


# --------------------------------------------------------------------------- body matching


def test_plain_string_body(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/b", body="exact")).respond(HttpResponse(body="s"))
    assert http.post("/b", content="exact").status_code == 200
    assert http.post("/b", content="exactly").status_code == 404


def test_string_sub_string_and_not(client: MockServerClient, http: httpx.Client) -> None:
    client.when(
        HttpRequest(path="/sub", body=Body(type="STRING", string="needle", sub_string=True))
    ).respond(HttpResponse(body="found"))
    client.when(
        HttpRequest(path="/notsub", body=Body(type="STRING", string="secret", not_body=True))
    ).respond(HttpResponse(body="not"))
    assert http.post("/sub", content="hay needle hay").status_code == 200
    assert http.post("/sub", content="hay").status_code == 404
    assert http.post("/notsub", content="public").status_code == 200
    assert http.post("/notsub", content="secret").status_code == 404


def test_regex_body(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/re", body=Body.regex("id=[0-9]+"))).respond(HttpResponse())
    assert http.post("/re", content="id=42").status_code == 200
    assert http.post("/re", content="id=x").status_code == 404


def test_json_body_only_matching_fields(client: MockServerClient, http: httpx.Client) -> None:
    client.when(
        HttpRequest(path="/json", body=Body.json({"user": {"name": "ann"}, "tags": ["b"]}))
    ).respond(HttpResponse(body="json"))
    matching = {"user": {"name": "ann", "age": 3}, "tags": ["a", "b"], "extra": True}
    assert http.post("/json", json=matching).status_code == 200
    assert http.post("/json", json={"user": {"name": "bob"}, "tags": ["b"]}).status_code == 404
    assert http.post("/json", content="not json").status_code == 404


def test_json_body_plain_object_form(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/obj", body={"kind": "plain"})).respond(HttpResponse())
    assert http.post("/obj", json={"kind": "plain", "more": 1}).status_code == 200
    assert http.post("/obj", json={"kind": "other"}).status_code == 404


def test_json_body_strict(client: MockServerClient, http: httpx.Client) -> None:
    body = Body(type="JSON", json={"a": 1, "list": [1, 2]}, match_type="STRICT")
    client.when(HttpRequest(path="/strict", body=body)).respond(HttpResponse())
    assert http.post("/strict", json={"list": [1, 2], "a": 1}).status_code == 200
    assert http.post("/strict", json={"a": 1, "list": [1, 2], "b": 2}).status_code == 404
    assert http.post("/strict", json={"a": 1, "list": [2, 1]}).status_code == 404
    assert http.post("/strict", json={"a": True, "list": [1, 2]}).status_code == 404


def test_json_schema_body(client: MockServerClient, http: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"id": {"type": "integer"}},
        "required": ["id"],
    }
    client.when(HttpRequest(path="/schema", body=Body.json_schema(schema))).respond(HttpResponse())
    assert http.post("/schema", json={"id": 5}).status_code == 200
    assert http.post("/schema", json={"id": "5"}).status_code == 404


def test_json_path_body(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/jp", body=Body.json_path("$.items[?(@.price < 10)]"))).respond(
        HttpResponse()
    )
    assert http.post("/jp", json={"items": [{"price": 50}, {"price": 5}]}).status_code == 200
    assert http.post("/jp", json={"items": [{"price": 50}]}).status_code == 404


def test_parameters_body(client: MockServerClient, http: httpx.Client) -> None:
    body = Body.parameters([KeyToMultiValue(name="user", values=["ann"])])
    client.when(HttpRequest(path="/form", body=body)).respond(HttpResponse())
    assert http.post("/form", data={"user": "ann", "x": "1"}).status_code == 200
    assert http.post("/form", data={"user": "bob"}).status_code == 404


def test_binary_body(client: MockServerClient, http: httpx.Client) -> None:
    payload = bytes(range(256))
    body = Body(type="BINARY", base64_bytes=base64.b64encode(payload).decode())
    client.when(HttpRequest(path="/bin", body=body)).respond(HttpResponse())
    assert http.post("/bin", content=payload).status_code == 200
    assert http.post("/bin", content=payload[:-1]).status_code == 404


def test_chunked_request_body(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/chunked", body="abcdef")).respond(HttpResponse(body="ok"))

    def chunks() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    assert http.post("/chunked", content=chunks()).text == "ok"


def test_unsupported_xml_matcher_is_rejected(client: MockServerClient) -> None:
    with pytest.raises(MockServerError, match="XML is not supported"):
        client.when(HttpRequest(path="/xml", body=Body.xml_matcher("<a/>"))).respond(HttpResponse())


# --------------------------------------------------------------------------- responses


def test_response_headers_cookies_reason(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/r")).respond(
        HttpResponse(status_code=418, reason_phrase="Short And Stout", body="tea")
        .with_header("X-One", "1", "2")
        .with_cookie("flavour", "earl-grey")
    )
    response = http.get("/r")
    assert response.status_code == 418
    assert response.reason_phrase == "Short And Stout"
    assert response.headers.get_list("X-One") == ["1", "2"]
    assert response.cookies["flavour"] == "earl-grey"
    assert response.text == "tea"


def test_json_response_body(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/j")).respond(HttpResponse(body=Body.json({"ok": True})))
    response = http.get("/j")
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"ok": True}


def test_binary_response_body(client: MockServerClient, http: httpx.Client) -> None:
    payload = b"\x00\xffbinary"
    body = Body(
        type="BINARY",
        base64_bytes=base64.b64encode(payload).decode(),
        content_type="application/octet-stream",
    )
    client.when(HttpRequest(path="/blob")).respond(HttpResponse(body=body))
    response = http.get("/blob")
    assert response.content == payload
    assert response.headers["content-type"] == "application/octet-stream"


def test_head_request_has_no_body(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(method="HEAD", path="/head")).respond(HttpResponse(body="hidden"))
    response = http.head("/head")
    assert response.status_code == 200
    assert response.headers["content-length"] == "6"
    assert response.content == b""
    assert http.get("/unmatched-after-head").status_code == 404


def test_delay(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/slow")).respond_with_delay(
        HttpResponse(body="late"), Delay(time_unit="MILLISECONDS", value=200)
    )
    started = time.perf_counter()
    assert http.get("/slow").text == "late"
    assert time.perf_counter() - started >= 0.19


def test_error_drop_connection(client: MockServerClient, engine: MockServerEngine) -> None:
    client.when(HttpRequest(path="/drop")).error(HttpError(drop_connection=True))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{engine.url}/drop")
    assert len(client.retrieve_recorded_requests(HttpRequest(path="/drop"))) == 1


def test_error_response_bytes(client: MockServerClient, engine: MockServerEngine) -> None:
    raw = b"HTTP/1.1 299 Odd\r\nContent-Length: 3\r\n\r\nodd"
    client.when(HttpRequest(path="/raw")).error(
        HttpError(drop_connection=True, response_bytes=base64.b64encode(raw).decode())
    )
    response = httpx.get(f"{engine.url}/raw")
    assert response.status_code == 299
    assert response.text == "odd"


# --------------------------------------------------------------------------- forwarding


@pytest.fixture
def upstream() -> Iterator[tuple[MockServerEngine, MockServerClient]]:
    with MockServerEngine() as target, open_client(target.host, target.port) as client:
        yield target, client


def test_forward_to_loopback(
    client: MockServerClient,
    http: httpx.Client,
    upstream: tuple[MockServerEngine, MockServerClient],
) -> None:
    target, target_client = upstream
    target_client.when(HttpRequest(method="POST", path="/api", body="ping")).respond(
        HttpResponse(status_code=202, body="pong").with_header("X-Upstream", "yes")
    )
    client.when(HttpRequest(path="/api")).forward(
        HttpForward(host="127.0.0.1", port=target.port, scheme="HTTP")
    )
    response = http.post("/api", content="ping", params={"q": "1"})
    assert response.status_code == 202
    assert response.text == "pong"
    assert response.headers["x-upstream"] == "yes"
    (forwarded,) = target_client.retrieve_recorded_requests()
    assert forwarded.path == "/api"
    recorded = client.retrieve_recorded_expectations()
    assert len(recorded) == 1
    assert recorded[0].http_response is not None
    assert recorded[0].http_response.status_code == 202


def test_override_forwarded_request(
    client: MockServerClient,
    http: httpx.Client,
    upstream: tuple[MockServerEngine, MockServerClient],
) -> None:
    target, target_client = upstream
    target_client.when(HttpRequest(path="/v2/thing")).respond(HttpResponse(body="v2"))
    override = HttpOverrideForwardedRequest(
        request_override=HttpRequest(
            path="/v2/thing", headers={"Host": [f"127.0.0.1:{target.port}"]}
        ),
        response_override=HttpResponse(status_code=203).with_header("X-Overridden", "1"),
    )
    client.when(HttpRequest(path="/v1/thing")).forward(override)
    response = http.get("/v1/thing")
    assert response.status_code == 203
    assert response.text == "v2"
    assert response.headers["x-overridden"] == "1"


def test_forward_refuses_non_loopback_hosts(client: MockServerClient) -> None:
    with pytest.raises(MockServerError, match="loopback"):
        client.when(HttpRequest(path="/out")).forward(HttpForward(host="example.com", port=80))


def test_forward_failure_answers_404(client: MockServerClient, http: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    client.when(HttpRequest(path="/dead")).forward(HttpForward(host="127.0.0.1", port=free_port))
    assert http.get("/dead").status_code == 404


# --------------------------------------------------------------------------- unmatched, retrieve


def test_unmatched_request_is_404_and_recorded(
    client: MockServerClient, http: httpx.Client
) -> None:
    response = http.post("/nothing/here", params={"x": "1"}, json={"a": 1})
    assert response.status_code == 404
    assert response.content == b""
    (recorded,) = client.retrieve_recorded_requests()
    assert recorded.method == "POST"
    assert recorded.path == "/nothing/here"
    assert [(q.name, q.values) for q in recorded.query_string_parameters] == [("x", ["1"])]
    assert recorded.body is not None


def test_retrieve_filters_and_shapes(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/one")).with_id("one").respond(HttpResponse(body="1"))
    client.when(HttpRequest(path="/two")).respond(HttpResponse(body="2"))
    http.get("/one")
    http.get("/two")
    http.get("/two")
    assert len(client.retrieve_recorded_requests()) == 3
    assert len(client.retrieve_recorded_requests(HttpRequest(path="/two"))) == 2
    assert len(client.retrieve_recorded_requests_by_id("one")) == 1
    assert [e.id for e in client.retrieve_active_expectations_by_id("one")] == ["one"]
    assert len(client.retrieve_active_expectations(HttpRequest(path="/two"))) == 1
    pairs = client.retrieve_recorded_requests_and_responses()
    assert [p.http_response.status_code for p in pairs if p.http_response] == [200, 200, 200]
    logs = client.retrieve_log_messages()
    assert any("creating expectation" in line for line in logs)
    assert any("received request" in line for line in logs)
    with pytest.raises(MockServerError):
        client.retrieve_recorded_requests_by_id("missing")


def test_retrieve_by_metadata_and_unmatched(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/m1")).with_metadata("owner", "team-a").respond(HttpResponse())
    client.when(HttpRequest(path="/m2")).with_metadata("owner", "team-b").respond(HttpResponse())
    http.get("/m1")
    owned = client.retrieve_active_expectations_by_metadata("owner", "team-a")
    assert [e.http_request.path for e in owned] == ["/m1"]
    assert [e.http_request.path for e in client.retrieve_unmatched_expectations()] == ["/m2"]


def test_retrieve_unknown_type_is_400(engine: MockServerEngine) -> None:
    response = httpx.put(f"{engine.url}/mockserver/retrieve?type=everything")
    assert response.status_code == 400


# --------------------------------------------------------------------------- clear, reset


def test_clear_by_request_and_types(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/keep")).respond(HttpResponse())
    client.when(HttpRequest(path="/drop")).respond(HttpResponse())
    http.get("/keep")
    http.get("/drop")
    client.clear(HttpRequest(path="/drop"), "log")
    assert [r.path for r in client.retrieve_recorded_requests()] == ["/keep"]
    assert len(client.retrieve_active_expectations()) == 2
    client.clear(HttpRequest(path="/drop"), "expectations")
    assert [e.http_request.path for e in client.retrieve_active_expectations()] == ["/keep"]
    client.clear(HttpRequest(path="/keep"))
    assert client.retrieve_active_expectations() == []
    assert client.retrieve_recorded_requests() == []


def test_clear_by_id(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/x")).with_id("x").respond(HttpResponse())
    client.when(HttpRequest(path="/y")).with_id("y").respond(HttpResponse())
    client.clear_by_id("x")
    assert [e.id for e in client.retrieve_active_expectations()] == ["y"]
    assert http.get("/x").status_code == 404


def test_clear_invalid_type_is_400(engine: MockServerEngine) -> None:
    response = httpx.put(f"{engine.url}/mockserver/clear?type=bogus")
    assert response.status_code == 400


def test_reset_over_rest(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/gone")).respond(HttpResponse())
    http.get("/gone")
    client.reset()
    assert client.retrieve_active_expectations() == []
    assert client.retrieve_recorded_requests() == []
    assert http.get("/gone").status_code == 404


# --------------------------------------------------------------------------- verify


def test_verify_passes(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/v")).respond(HttpResponse())
    http.get("/v")
    http.get("/v")
    client.verify(HttpRequest(path="/v"))
    client.verify(HttpRequest(path="/v"), VerificationTimes.exactly(2))
    client.verify(HttpRequest(path="/v"), VerificationTimes.between(1, 3))
    client.verify(HttpRequest(path="/other"), VerificationTimes.at_most(0))


def test_verify_failure_text(client: MockServerClient, http: httpx.Client) -> None:
    http.get("/seen")
    with pytest.raises(MockServerVerificationError) as failure:
        client.verify(HttpRequest(path="/missing"), VerificationTimes.at_least(1))
    message = str(failure.value)
    assert message.startswith(
        'Request not found at least once, expected:<{\n  "path" : "/missing"\n}> but was:<{\n'
    )
    assert '  "path" : "/seen",\n' in message
    assert message.endswith("}>")
    assert isinstance(failure.value, AssertionError)


def test_verify_failure_times_wording(client: MockServerClient, http: httpx.Client) -> None:
    http.get("/w")
    with pytest.raises(MockServerVerificationError, match=r"^Request not found exactly 2 times"):
        client.verify(HttpRequest(path="/w"), VerificationTimes.exactly(2))
    with pytest.raises(MockServerVerificationError, match=r"^Request not found exactly once"):
        client.verify(HttpRequest(path="/nope"), VerificationTimes.once())
    client.reset()
    with pytest.raises(MockServerVerificationError, match=r"but was:<\[ \]>$"):
        client.verify(HttpRequest(path="/w"))


def test_verify_failure_with_many_requests(client: MockServerClient, http: httpx.Client) -> None:
    for _ in range(12):
        http.get("/many")
    with pytest.raises(MockServerVerificationError) as failure:
        client.verify(HttpRequest(path="/many"), VerificationTimes.exactly(3))
    assert str(failure.value).endswith("but was found 12 times among 12 total requests")


def test_verify_zero_interactions(client: MockServerClient, http: httpx.Client) -> None:
    client.verify_zero_interactions()
    http.get("/any")
    with pytest.raises(MockServerVerificationError, match=r"^Request not found at most 0 times"):
        client.verify_zero_interactions()


def test_verify_by_response(client: MockServerClient, http: httpx.Client) -> None:
    client.when(HttpRequest(path="/status")).respond(HttpResponse(status_code=201, body="made"))
    http.get("/status")
    client.verify(HttpRequest(path="/status"), response=HttpResponse(status_code=201))
    with pytest.raises(MockServerVerificationError):
        client.verify(HttpRequest(path="/status"), response=HttpResponse(status_code=500))


def test_verify_sequence(client: MockServerClient, http: httpx.Client) -> None:
    for path in ("/first", "/second", "/third"):
        http.get(path)
    client.verify_sequence(HttpRequest(path="/first"), HttpRequest(path="/third"))
    with pytest.raises(MockServerVerificationError) as failure:
        client.verify_sequence(HttpRequest(path="/third"), HttpRequest(path="/first"))
    assert str(failure.value).startswith(
        'Request sequence not found, expected:<[ {\n  "path" : "/third"\n}, {\n'
        '  "path" : "/first"\n} ]> but was:<[ {\n'
    )


def test_verify_json_body_match(client: MockServerClient, http: httpx.Client) -> None:
    http.post("/orders", json={"id": 7, "lines": [{"sku": "a"}, {"sku": "b"}]})
    client.verify(
        HttpRequest(method="POST", path="/orders", body=Body.json({"lines": [{"sku": "b"}]})),
        VerificationTimes.once(),
    )
    with pytest.raises(MockServerVerificationError):
        client.verify(HttpRequest(path="/orders", body=Body.json({"id": 8})))


# --------------------------------------------------------------------------- malformed input


def test_malformed_json_is_400_with_reason(engine: MockServerEngine) -> None:
    response = httpx.put(f"{engine.url}/mockserver/expectation", content=b'{"httpRequest": ')
    assert response.status_code == 400
    assert "is not valid JSON" in response.text


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"httpRequest": {"path": "/x"}}, "must have an action"),
        ({"httpRequest": {"path": "/x", "nonsense": 1}, "httpResponse": {}}, "unknown field"),
        ({"httpResponse": {"statusCode": "200"}}, "must be an integer"),
        ({"httpResponse": {}, "times": {"remainingTimes": -1}}, "must not be negative"),
        ({"httpRequest": {"body": {"type": "REGEX", "regex": "("}}, "httpResponse": {}}, "regular"),
        ([], "at least one expectation"),
        ("just a string", "must be a JSON object"),
    ],
)
def test_invalid_expectations_are_400(
    engine: MockServerEngine, document: object, reason: str
) -> None:
    response = httpx.put(f"{engine.url}/mockserver/expectation", content=json.dumps(document))
    assert response.status_code == 400
    assert reason in response.text


def test_invalid_expectation_through_client(client: MockServerClient) -> None:
    with pytest.raises(MockServerError, match="Invalid expectation"):
        client.when(HttpRequest(path="/x", body=Body.json_schema({"type": 12}))).respond(
            HttpResponse()
        )


def test_invalid_verification_is_400(engine: MockServerEngine) -> None:
    for body in (b"[1, 2", b'"text"', b'{"times": {"atLeast": "one"}}'):
        response = httpx.put(f"{engine.url}/mockserver/verify", content=body)
        assert response.status_code == 400


def test_bad_content_length_is_400(engine: MockServerEngine) -> None:
    with socket.create_connection((engine.host, engine.port), timeout=5) as raw:
        raw.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: ten\r\n\r\n")
        assert raw.recv(1024).startswith(b"HTTP/1.1 400")


def test_unsupported_control_endpoint_is_501(engine: MockServerEngine) -> None:
    assert httpx.put(f"{engine.url}/mockserver/clock").status_code == 501


# --------------------------------------------------------------------------- concurrency


def test_many_parallel_requests(client: MockServerClient, engine: MockServerEngine) -> None:
    client.when(HttpRequest(path="/parallel")).respond(HttpResponse(body="p"))
    client.when(HttpRequest(path="/limited"), Times.exactly(25)).respond(HttpResponse(body="l"))

    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(base_url=engine.url, limits=limits) as session:

        def call(index: int) -> tuple[int, int]:
            first = session.get("/parallel", params={"i": str(index)}).status_code
            second = session.get("/limited").status_code
            return first, second

        with ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(call, range(200)))
    assert all(first == 200 for first, _ in results)
    assert sum(1 for _, second in results if second == 200) == 25
    client.verify(HttpRequest(path="/parallel"), VerificationTimes.exactly(200))
    client.verify(HttpRequest(path="/limited"), VerificationTimes.exactly(200))


def test_concurrent_control_and_traffic(client: MockServerClient, engine: MockServerEngine) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic() -> None:
        with httpx.Client(base_url=engine.url) as session:
            while not stop.is_set():
                try:
                    assert session.get("/busy").status_code in (200, 404)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                    return

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for index in range(30):
            client.when(HttpRequest(path="/busy")).with_id("busy").respond(
                HttpResponse(body=str(index))
            )
            client.retrieve_recorded_requests(HttpRequest(path="/busy"))
            if index % 10 == 0:
                client.clear(HttpRequest(path="/busy"), "log")
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert errors == []


def test_request_benchmark_measures_twenty_expectations_every_round() -> None:
    """benchmarks/bench_mockserver.py advertises "20 expectations active, the match on the
    last": it checks that before every timed round (and raises if not), so a short run here
    keeps the benchmark honest."""
    from benchmarks.bench_mockserver import bench_requests

    assert bench_requests(rounds=3, count=5) > 0
