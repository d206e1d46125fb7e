"""MockServer through the fixtures, with the official client as the acceptance bar.

Runs against whichever backend serves ``mockserver`` (the local engine process here, a Docker
MockServer or an external URL elsewhere): every request goes over the network to it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from mockserver import (
    AsyncMockServerClient,
    Body,
    Delay,
    HttpForward,
    HttpRequest,
    HttpResponse,
    MockServerClient,
    MockServerVerificationError,
    Times,
    VerificationTimes,
)

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.mockserver.spec import MockServerInfo, MockServerSpec


@pytest.fixture
def http(mockserver_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mockserver_url, timeout=10) as client:
        yield client


# --------------------------------------------------------------------------- the contract


def test_service_handle(mockserver_service: ServiceHandle[MockServerInfo]) -> None:
    info = mockserver_service.info
    assert info.url == f"http://{info.host}:{info.port}"
    assert mockserver_service.backend in ("local", "docker", "external")
    assert mockserver_service.version  # commons-engine …, mockserver …, mockserver-api
    assert "mockserver" in repr(mockserver_service)


def test_fixtures_agree(
    mockserver: MockServerClient,
    mockserver_url: str,
    mockserver_service: ServiceHandle[MockServerInfo],
    mockserver_host: str,
    mockserver_port: int,
    mockserver_server: tuple[str, int],
) -> None:
    info = mockserver_service.info
    assert mockserver_url == info.url
    assert (mockserver_host, mockserver_port) == mockserver_server == (info.host, info.port)
    assert mockserver.has_started(attempts=1)


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_each_test_starts_reset(
    mockserver: MockServerClient, http: httpx.Client, round_: int
) -> None:
    assert mockserver.retrieve_active_expectations() == []
    assert mockserver.retrieve_recorded_requests() == []
    mockserver.when(HttpRequest(path="/leftover")).respond(HttpResponse(body=str(round_)))
    assert http.get("/leftover").text == str(round_)


def test_marker_added(request: pytest.FixtureRequest, mockserver: MockServerClient) -> None:
    assert request.node.get_closest_marker("mockserver") is not None


# --------------------------------------------------------------------------- expectations


def test_expectation_response(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(
        HttpRequest(method="GET", path="/users/{id}", query_string_parameters={"full": ["1"]})
    ).respond(
        HttpResponse(
            status_code=201,
            body=json.dumps({"id": 7}),
            headers={"Content-Type": ["application/json"]},
        ).with_header("X-Mock", "yes")
    )
    response = http.get("/users/7", params={"full": "1"})
    assert response.status_code == 201
    assert response.json() == {"id": 7}
    assert response.headers["x-mock"] == "yes"
    assert http.get("/users/7").status_code == 404  # the query parameter is required


def test_upsert_returns_ids_and_replaces(mockserver: MockServerClient, http: httpx.Client) -> None:
    (first,) = (
        mockserver.when(HttpRequest(path="/v")).with_id("fixed").respond(HttpResponse(body="one"))
    )
    assert first.id == "fixed"
    mockserver.when(HttpRequest(path="/v")).with_id("fixed").respond(HttpResponse(body="two"))
    assert http.get("/v").text == "two"
    assert len(mockserver.retrieve_active_expectations()) == 1


def test_priority(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(HttpRequest(path="/p")).respond(HttpResponse(body="low"))
    mockserver.when(HttpRequest(path="/p"), priority=10).respond(HttpResponse(body="high"))
    assert http.get("/p").text == "high"


def test_times(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(HttpRequest(path="/twice"), Times(remaining_times=2, unlimited=False)).respond(
        HttpResponse(body="ok")
    )
    assert [http.get("/twice").status_code for _ in range(3)] == [200, 200, 404]
    assert mockserver.retrieve_active_expectations() == []


def test_delay(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(HttpRequest(path="/slow")).respond_with_delay(
        HttpResponse(body="late"), Delay(time_unit="MILLISECONDS", value=250)
    )
    started = time.perf_counter()
    assert http.get("/slow").text == "late"
    assert time.perf_counter() - started >= 0.24


def test_json_body_matching(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(
        HttpRequest(method="POST", path="/orders", body=Body.json({"customer": {"id": 1}}))
    ).respond(HttpResponse(status_code=202))
    strict = Body(type="JSON", json={"a": 1}, match_type="STRICT")
    mockserver.when(HttpRequest(method="POST", path="/strict", body=strict)).respond(
        HttpResponse(status_code=200)
    )
    assert (
        http.post("/orders", json={"customer": {"id": 1, "name": "x"}, "n": 2}).status_code == 202
    )
    assert http.post("/orders", json={"customer": {"id": 2}}).status_code == 404
    assert http.post("/strict", json={"a": 1}).status_code == 200
    assert http.post("/strict", json={"a": 1, "b": 2}).status_code == 404


def test_invalid_expectation_is_400(http: httpx.Client) -> None:
    response = http.put("/mockserver/expectation", content=b'{"httpRequest": ')
    assert response.status_code == 400
    assert response.text  # MockServer says what is wrong


# --------------------------------------------------------------------------- clear / reset


def test_clear_by_request(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(HttpRequest(path="/a")).respond(HttpResponse(body="a"))
    mockserver.when(HttpRequest(path="/b")).respond(HttpResponse(body="b"))
    http.get("/a")
    mockserver.clear(HttpRequest(path="/a"))
    assert http.get("/a").status_code == 404
    assert http.get("/b").text == "b"
    paths = [r.path for r in mockserver.retrieve_recorded_requests()]
    assert paths == ["/a", "/b"]  # the first /a went with the clear, the 404 one is new


def test_clear_log_only(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(HttpRequest(path="/keep")).respond(HttpResponse(body="k"))
    http.get("/keep")
    mockserver.clear(clear_type="log")
    assert mockserver.retrieve_recorded_requests() == []
    assert http.get("/keep").text == "k"


def test_reset(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(HttpRequest(path="/r")).respond(HttpResponse(body="r"))
    http.get("/r")
    mockserver.reset()
    assert mockserver.retrieve_active_expectations() == []
    assert mockserver.retrieve_recorded_requests() == []
    assert http.get("/r").status_code == 404


# --------------------------------------------------------------------------- retrieve


def test_retrieve(mockserver: MockServerClient, http: httpx.Client) -> None:
    mockserver.when(HttpRequest(path="/x")).respond(HttpResponse(status_code=203, body="x"))
    http.post("/x", content="payload", headers={"X-Trace": "t1"})
    http.get("/unmatched")
    requests = mockserver.retrieve_recorded_requests()
    assert [r.path for r in requests] == ["/x", "/unmatched"]
    assert [r.method for r in mockserver.retrieve_recorded_requests(HttpRequest(path="/x"))] == [
        "POST"
    ]
    (pair,) = mockserver.retrieve_recorded_requests_and_responses(HttpRequest(path="/x"))
    assert pair.http_response is not None
    assert pair.http_response.status_code == 203
    (active,) = mockserver.retrieve_active_expectations()
    assert active.http_request is not None
    assert active.http_request.path == "/x"
    assert any("/unmatched" in line for line in mockserver.retrieve_log_messages())


# --------------------------------------------------------------------------- verify


def test_verify(mockserver: MockServerClient, http: httpx.Client) -> None:
    http.get("/v")
    http.get("/v")
    mockserver.verify(HttpRequest(path="/v"))
    mockserver.verify(HttpRequest(path="/v"), VerificationTimes.exactly(2))
    mockserver.verify(HttpRequest(path="/never"), VerificationTimes.at_most(0))


def test_verify_failure_text(mockserver: MockServerClient, http: httpx.Client) -> None:
    http.get("/seen")
    with pytest.raises(MockServerVerificationError) as failure:
        mockserver.verify(HttpRequest(path="/missing"), VerificationTimes.at_least(1))
    message = str(failure.value)
    assert message.startswith('Request not found at least once, expected:<{\n  "path" : "/missing"')
    assert '"path" : "/seen"' in message
    assert isinstance(failure.value, AssertionError)  # pytest shows it as a failed assertion
    with pytest.raises(MockServerVerificationError, match=r"^Request not found exactly 2 times"):
        mockserver.verify(HttpRequest(path="/seen"), VerificationTimes.exactly(2))


def test_verify_sequence_and_zero_interactions(
    mockserver: MockServerClient, http: httpx.Client
) -> None:
    mockserver.verify_zero_interactions()
    for path in ("/first", "/second", "/third"):
        http.get(path)
    mockserver.verify_sequence(HttpRequest(path="/first"), HttpRequest(path="/third"))
    with pytest.raises(MockServerVerificationError, match=r"^Request sequence not found"):
        mockserver.verify_sequence(HttpRequest(path="/third"), HttpRequest(path="/first"))
    with pytest.raises(MockServerVerificationError):
        mockserver.verify_zero_interactions()


def test_verify_json_body(mockserver: MockServerClient, http: httpx.Client) -> None:
    http.post("/orders", json={"id": 7, "lines": [{"sku": "a"}, {"sku": "b"}]})
    mockserver.verify(
        HttpRequest(method="POST", path="/orders", body=Body.json({"lines": [{"sku": "b"}]})),
        VerificationTimes.once(),
    )
    with pytest.raises(MockServerVerificationError):
        mockserver.verify(HttpRequest(path="/orders", body=Body.json({"id": 8})))


# --------------------------------------------------------------------------- forwarding


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = json.dumps({"path": self.path, "got": body.decode()}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "stdlib")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_forward_to_loopback_server(
    mockserver: MockServerClient,
    http: httpx.Client,
    upstream: ThreadingHTTPServer,
    mockserver_service: ServiceHandle[MockServerInfo],
) -> None:
    if mockserver_service.backend == "docker":
        pytest.skip("a MockServer in a container cannot reach the host's 127.0.0.1")
    port = upstream.server_address[1]
    mockserver.when(HttpRequest(path="/api/.*")).forward(
        HttpForward(host="127.0.0.1", port=int(port), scheme="HTTP")
    )
    response = http.post("/api/items?x=1", content="ping")
    assert response.status_code == 201
    assert response.json() == {"path": "/api/items?x=1", "got": "ping"}
    assert response.headers["x-upstream"] == "stdlib"
    mockserver.verify(HttpRequest(path="/api/items"), VerificationTimes.once())
    (recorded,) = mockserver.retrieve_recorded_expectations()
    assert recorded.http_response is not None
    assert recorded.http_response.status_code == 201


# --------------------------------------------------------------------------- async client


def test_async_client(mockserver_async: AsyncMockServerClient, mockserver_url: str) -> None:
    async def scenario() -> None:
        await mockserver_async.when(HttpRequest(path="/async")).respond(HttpResponse(body="a"))
        async with httpx.AsyncClient(base_url=mockserver_url) as client:
            assert (await client.get("/async")).text == "a"
        await mockserver_async.verify(HttpRequest(path="/async"), VerificationTimes.once())
        with pytest.raises(MockServerVerificationError):
            await mockserver_async.verify(HttpRequest(path="/other"))
        await mockserver_async.close()

    asyncio.run(scenario())


def test_async_and_sync_share_the_reset_instance(
    mockserver: MockServerClient, mockserver_async: AsyncMockServerClient
) -> None:
    mockserver.when(HttpRequest(path="/both")).respond(HttpResponse())
    found = asyncio.run(mockserver_async.retrieve_active_expectations())
    assert [e.http_request.path for e in found if e.http_request] == ["/both"]


# --------------------------------------------------------------------------- the probe


def test_probe_names_the_server(mockserver_service: ServiceHandle[MockServerInfo]) -> None:
    spec = mockserver_service.spec
    assert isinstance(spec, MockServerSpec)
    version = spec.probe(mockserver_service.info, timeout=5)
    if mockserver_service.backend == "local" and mockserver_service.version.startswith(
        "mockserver "
    ):
        assert version == mockserver_service.version  # the real MockServer names its version
    elif mockserver_service.backend == "local":
        # this process's own engine is a plain engine; the shared process is the hub
        assert version == "commons-engine"
        assert spec.is_hub(mockserver_service.version)


# fault injection (restarting the shared engine process) is in tests/plugin/
# test_mockserver_plugin.py: an inner run without xdist, so it runs under CI's `-n 2`
