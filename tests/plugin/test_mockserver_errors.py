"""What a user sees when the MockServer service goes wrong: a stopped server, a hub that hands
out no engine, a server that is not (quite) a MockServer, a malformed URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from pytest_commons.errors import NotReady, ProbeRefused
from pytest_commons.services.mockserver.engine import MockServerEngine
from pytest_commons.services.mockserver.spec import MockServerInfo, MockServerSpec

# inner runs load every installed plugin: these tests check how ours lives beside them
INNER_ALL_PLUGINS = True


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment for inner runs; mockserver-client's plugin never downloads."""
    for name in ("MOCKSERVER_HOST", "MOCKSERVER_PORT"):
        clean_env.delenv(name, raising=False)
    clean_env.setenv("MOCKSERVER_SKIP_BINARY_DOWNLOAD", "1")
    clean_env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "local")
    return clean_env


@pytest.fixture
def engine() -> Iterator[MockServerEngine]:
    with MockServerEngine() as running:
        yield running


# ------------------------------------------------------------------- servers that misbehave


class _Scripted(BaseHTTPRequestHandler):
    """Answers ``PUT <path>`` from ``routes``: (status, headers, body), or None to hang up."""

    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes] | None]] = {}

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        route = self.routes.get(self.path, (404, {}, b"no such path"))
        if route is None:
            self.close_connection = True
            return
        status, headers, body = route
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[
    tuple[MockServerInfo, dict[str, tuple[int, dict[str, str], bytes] | None]]
]:
    """An HTTP server whose answers the test scripts (a stand-in for a foreign server)."""
    routes: dict[str, tuple[int, dict[str, str], bytes] | None] = {}
    handler = type("Handler", (_Scripted,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield MockServerInfo(host="127.0.0.1", port=server.server_port), routes
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _status_ok(port: int) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps({"ports": [port]}).encode()


# ------------------------------------------------------------------------------- the probe


def test_probe_of_a_closed_port_is_not_ready(engine: MockServerEngine) -> None:
    info = MockServerInfo(host=engine.host, port=engine.port)
    engine.stop()
    with pytest.raises(NotReady, match=f"http://127.0.0.1:{info.port}"):
        MockServerSpec().probe(info, timeout=2)


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (503, b"starting", NotReady, "PUT /mockserver/status answered HTTP 503"),
        (401, b"", ProbeRefused, "requires control-plane authentication (HTTP 401)"),
        (200, b"<html>", ProbeRefused, "is not a MockServer: PUT /mockserver/status answered"),
        (200, b"[1, 2]", ProbeRefused, "(expected 200 with {'ports': [...]})"),
    ],
)
def test_probe_refuses_what_is_not_a_ready_mockserver(
    scripted: tuple[MockServerInfo, dict[str, tuple[int, dict[str, str], bytes] | None]],
    status: int,
    body: bytes,
    error: type[Exception],
    text: str,
) -> None:
    info, routes = scripted
    routes["/mockserver/status"] = (status, {}, body)
    with pytest.raises(error) as raised:
        MockServerSpec().probe(info, timeout=5)
    assert text in str(raised.value)


@pytest.mark.parametrize(
    ("status_headers", "info_route", "version"),
    [
        ({"version": "5.15.0"}, (404, {}, b"not found"), "mockserver 5.15.0"),
        ({"x-mockserver-version": "5.14.0"}, (404, {}, b""), "mockserver 5.14.0"),
        ({}, (200, {}, b"not json"), "mockserver-api"),
        ({}, (200, {}, b'{"engine": "other"}'), "mockserver-api"),
        ({}, None, "mockserver-api"),  # hangs up on the pytest-commons extension
        ({}, (200, {}, b'{"engine": "pytest-commons"}'), "commons-engine ?"),
    ],
)
def test_probe_names_the_flavour_of_mockserver(
    scripted: tuple[MockServerInfo, dict[str, tuple[int, dict[str, str], bytes] | None]],
    status_headers: dict[str, str],
    info_route: tuple[int, dict[str, str], bytes] | None,
    version: str,
) -> None:
    info, routes = scripted
    status, headers, body = _status_ok(info.port)
    routes["/mockserver/status"] = (status, {**headers, **status_headers}, body)
    routes["/mockserver/pytestCommons/info"] = info_route
    spec = MockServerSpec()
    assert spec.probe(info, timeout=5) == version
    assert spec.is_hub(version) is version.startswith("commons-engine ")


# ------------------------------------------------------------------------------ parse_url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://:1080", "no host"),
        ("http://127.0.0.1:99999", "bad port"),
        ("http://127.0.0.1:port", "bad port"),
        ("http://user:secret@127.0.0.1:1080", "the URL takes no credentials, query or fragment"),
        ("http://127.0.0.1:1080/?x=1", "the URL takes no credentials, query or fragment"),
        ("127.0.0.1:1080", "scheme must be http://"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("?", r"\?")):
        MockServerSpec().parse_url(url)


def test_url_defaults_to_mockservers_port() -> None:
    info = MockServerSpec().parse_url(" http://mock.internal/ ")
    assert (info.host, info.port, info.url) == ("mock.internal", 1080, "http://mock.internal:1080")


def test_credentials_in_the_external_url_are_a_usage_error_with_the_reason(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", "http://user:pw@127.0.0.1:1080")
    env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "external")
    pytester.makepyfile("def test_ms(mockserver):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*MOCKSERVER_URL) is malformed*no credentials*"])
    assert ":pw@" not in result.stdout.str() + result.stderr.str()  # the password is never shown


# ------------------------------------------------------------------------- through pytest


def test_control_plane_authentication_fails_fast_with_the_reason(
    pytester: pytest.Pytester,
    env: pytest.MonkeyPatch,
    scripted: tuple[MockServerInfo, dict[str, tuple[int, dict[str, str], bytes] | None]],
) -> None:
    info, routes = scripted
    routes["/mockserver/status"] = (401, {"WWW-Authenticate": "Bearer"}, b"")
    env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", info.url)
    env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "external")
    pytester.makepyfile("def test_ms(mockserver):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*mockserver (external backend)*requires control-plane authentication (HTTP 401)*"]
    )


def test_a_hub_that_hands_out_no_engine_fails_with_its_answer(
    pytester: pytest.Pytester,
    env: pytest.MonkeyPatch,
    scripted: tuple[MockServerInfo, dict[str, tuple[int, dict[str, str], bytes] | None]],
) -> None:
    info, routes = scripted
    routes["/mockserver/status"] = _status_ok(info.port)
    routes["/mockserver/pytestCommons/info"] = (200, {}, b'{"engine": "pytest-commons"}')
    routes["/mockserver/pytestCommons/engine"] = (503, {}, b"no engines left")
    env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", info.url)
    env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "external")
    pytester.makepyfile("def test_ms(mockserver):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*mockserver (external backend): claiming an engine for worker master from "
            f"{info.url} failed: PUT {info.url}/mockserver/pytestCommons/engine answered "
            "HTTP 503: no engines left",
            "*last lines of the engine log:",
            "*| (empty)",
        ]
    )


@pytest.fixture
def hub_process() -> Iterator[str]:
    """The engine process of the local backend, started by hand (an external hub)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_commons.services.mockserver.engine"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        banner = process.stdout.readline()  # printed once the port listens
        assert " on http://127.0.0.1:" in banner, banner
        yield banner.rsplit(" on ", 1)[1].strip()
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
        process.stdout.close()


def test_an_external_hub_hands_out_an_engine_per_process(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, hub_process: str
) -> None:
    env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", hub_process)
    env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "external")
    pytester.makepyfile(
        f"""
        import json, urllib.request
        from mockserver import HttpRequest, HttpResponse

        def test_own_engine(mockserver, mockserver_service, mockserver_url):
            assert mockserver_service.hub.url == "{hub_process}"
            assert mockserver_url != "{hub_process}"
            mockserver.when(HttpRequest(path="/mine")).respond(HttpResponse(body="mine"))
            assert urllib.request.urlopen(mockserver_url + "/mine").read() == b"mine"
            hub = urllib.request.Request(
                "{hub_process}/mockserver/pytestCommons/info", method="PUT"
            )
            engines = json.load(urllib.request.urlopen(hub))["engines"]
            assert list(engines.values()) == [mockserver_service.info.port]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mockserver  external *commons-engine *"])
    # the engine was released at the end of the run; the hub itself keeps running
    info = httpx.put(f"{hub_process}/mockserver/pytestCommons/info").json()
    assert info["engines"] == {}


STOPS_THE_SERVER = """
import socket, time, urllib.request

def test_stops_it(mockserver_url, mockserver_server):
    stop = urllib.request.Request(mockserver_url + "/mockserver/stop", method="PUT")
    assert urllib.request.urlopen(stop).status == 200
    # MockServer answers "stopping" and then stops: wait until the port is closed
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(mockserver_server, timeout=1).close()
        except OSError:
            break
        assert time.monotonic() < deadline, "the server never stopped"

def test_next(mockserver):
    pass
"""


def test_reset_of_a_stopped_external_server_fails_with_the_remedy(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, engine: MockServerEngine
) -> None:
    url = engine.url  # the inner run stops the engine
    env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", url)
    env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "external")
    pytester.makepyfile(STOPS_THE_SERVER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            # the connection's own error (no reclaim of a per-worker engine was attempted)
            f"*mockserver (external backend): resetting {url} before the test failed: "
            "*Connection refused",
            "*remedy: is the server still running? (a test that stopped it must start it again)",
        ]
    )
    # the message alone, no traceback into the plugin's fixture
    assert "pytest_commons/services/mockserver/fixtures.py" not in result.stdout.str()


def test_reset_after_a_test_stopped_the_local_engine_process_fails_with_the_remedy(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        def test_stops_it(mockserver_service):
            mockserver_service.stop()

        def test_next(mockserver):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*mockserver (local backend): resetting http://127.0.0.1:* before the test failed: "
            "*Connection refused",
            "*remedy: is the server still running?*",
        ]
    )


# gw0 restarts the shared engine process while gw1 waits; gw1's engine died with it, and
# gw1's next reset claims it back on the same port.
RESTART_BY_ANOTHER_WORKER = """
import os, time, urllib.request
from pathlib import Path
from mockserver import HttpRequest, HttpResponse

OUT = Path(os.environ["MS_OUT"])
WORKER = os.environ["PYTEST_XDIST_WORKER"]

def barrier(name):
    (OUT / f"{name}.{WORKER}").touch()
    deadline = time.monotonic() + 120
    while len(list(OUT.glob(f"{name}.*"))) < 2:
        assert time.monotonic() < deadline, f"the other worker never reached {name}"
        time.sleep(0.01)

def test_1_restart(mockserver_url, mockserver_service):
    (OUT / f"url-{WORKER}").write_text(mockserver_url)
    barrier("claimed")
    if WORKER == "gw0":
        mockserver_service.restart()
    barrier("restarted")

def test_2_still_works(mockserver, mockserver_url):
    assert mockserver_url == (OUT / f"url-{WORKER}").read_text()
    mockserver.when(HttpRequest(path="/back")).respond(HttpResponse(body=WORKER))
    assert urllib.request.urlopen(mockserver_url + "/back").read() == WORKER.encode()
"""


def test_a_restart_by_another_xdist_worker_is_recovered_at_the_next_reset(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env.setenv("MS_OUT", str(out))
    pytester.makepyfile(RESTART_BY_ANOTHER_WORKER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=4)
    assert len({(out / f"url-{w}").read_text() for w in ("gw0", "gw1")}) == 2
