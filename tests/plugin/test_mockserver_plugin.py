"""The MockServer service in inner pytest runs: marker, coexistence with mockserver-client's
own plugin, xdist isolation, external URLs and their failures."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mockserver import HttpRequest, VerificationTimes

from pytest_commons.services.mockserver.engine import MockServerEngine
from pytest_commons.services.mockserver.spec import open_client

# inner runs load every installed plugin: these tests check how ours lives beside them
INNER_ALL_PLUGINS = True

# which fixture served `mockserver`: ours needs mockserver_service, theirs only mockserver_server
WHOSE = """
import json, os, urllib.request
from mockserver import HttpRequest, HttpResponse

def test_whose(mockserver, mockserver_host, mockserver_port, mockserver_server, request):
    ours = "mockserver_service" in request.fixturenames
    mockserver.when(HttpRequest(path="/who")).respond(HttpResponse(body="me"))
    url = f"http://{mockserver_host}:{mockserver_port}/who"
    assert urllib.request.urlopen(url).read() == b"me"
    assert (mockserver_host, mockserver_port) == mockserver_server
    print("WHOSE=" + json.dumps({"ours": ours, "port": mockserver_port}))
"""


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment that would make mockserver-client's plugin fail fast (never
    download) if it ever served a fixture; pytest-commons' local backend for MockServer."""
    for name in ("MOCKSERVER_HOST", "MOCKSERVER_PORT"):
        clean_env.delenv(name, raising=False)
    clean_env.setenv("MOCKSERVER_SKIP_BINARY_DOWNLOAD", "1")
    clean_env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "local")
    return clean_env


@pytest.fixture
def engine() -> Iterator[MockServerEngine]:
    """A plain engine in this (outer) process, for inner runs to use as an external server."""
    with MockServerEngine() as running:
        yield running


def _whose(result: pytest.RunResult) -> dict[str, object]:
    lines = [line for line in result.outlines if "WHOSE=" in line]
    assert lines, result.stdout.str()
    data: dict[str, object] = json.loads(lines[-1].split("WHOSE=", 1)[1])
    return data


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


# ---------------------------------------------------------------------------------- markers


def test_marker_is_added_and_registered(pytester: pytest.Pytester, env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        "def test_ms(mockserver):\n    pass\n"
        "def test_compat(mockserver_port):\n    pass\n"
        "def test_plain():\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-m", "not mockserver", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_plain*"])
    result.stdout.no_fnmatch_line("*test_ms*")
    result.stdout.no_fnmatch_line("*test_compat*")
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.mockserver: the test uses the MockServer service*"])


# ------------------------------------------------------------------------ plugin coexistence


def test_ours_serve_the_names_and_nothing_is_downloaded(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(WHOSE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert _whose(result)["ours"] is True
    assert "MOCKSERVER_SKIP_BINARY_DOWNLOAD" not in result.stdout.str()
    result.stdout.fnmatch_lines(["mockserver  local *commons-engine*"])


@pytest.mark.parametrize(
    "order",
    [("-p", "mockserver", "-p", "commons"), ("-p", "commons", "-p", "mockserver")],
    ids=["theirs-first", "ours-first"],
)
def test_ours_win_whatever_the_load_order(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, order: tuple[str, ...]
) -> None:
    env.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(WHOSE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *order)
    result.assert_outcomes(passed=1)
    assert _whose(result)["ours"] is True
    assert "MOCKSERVER_SKIP_BINARY_DOWNLOAD" not in result.stdout.str()


def test_no_commons_leaves_their_plugin_alone(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, engine: MockServerEngine
) -> None:
    env.setenv("MOCKSERVER_HOST", engine.host)
    env.setenv("MOCKSERVER_PORT", str(engine.port))
    pytester.makepyfile(WHOSE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "-p", "no:commons")
    result.assert_outcomes(passed=1)
    assert _whose(result) == {"ours": False, "port": engine.port}


def test_no_commons_without_a_server_is_their_plugin_failing(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(WHOSE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:commons")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*MOCKSERVER_SKIP_BINARY_DOWNLOAD is set*"])


def test_tests_written_for_their_plugin_run_on_ours(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    # the usage example of mockserver-client's plugin, unchanged
    pytester.makepyfile(
        """
        import urllib.request
        from mockserver import HttpRequest, HttpResponse

        def test_records_the_request(mockserver):
            mockserver.when(HttpRequest(path="/hello")).respond(HttpResponse(body="world"))
            host, port = mockserver._async_client._host, mockserver._async_client._port
            assert urllib.request.urlopen(f"http://{host}:{port}/hello").read() == b"world"
            mockserver.verify(HttpRequest(path="/hello"))

        def test_reset_between_tests(mockserver):
            assert mockserver.retrieve_recorded_requests() == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


# ---------------------------------------------------------------------------------- xdist

# Every test runs on both workers at once (--dist each) and meets the other worker at two
# barriers: after both reset, and after both set up. A shared, globally reset server would
# show the other worker's expectation and request at the end.
XDIST_BARRIER = """
import json, os, time, urllib.request
from pathlib import Path
from mockserver import HttpRequest, HttpResponse

OUT = Path(os.environ["MS_OUT"])
WORKER = os.environ["PYTEST_XDIST_WORKER"]

def barrier(name, url):
    (OUT / f"{name}.{WORKER}").write_text(url)
    deadline = time.monotonic() + 60
    while len(list(OUT.glob(f"{name}.*"))) < 2:
        assert time.monotonic() < deadline, f"the other worker never reached {name}"
        time.sleep(0.01)

def test_isolated(mockserver, mockserver_url):
    barrier("reset", mockserver_url)
    mockserver.when(HttpRequest(path="/who")).respond(HttpResponse(body=WORKER))
    assert urllib.request.urlopen(mockserver_url + "/who").read() == WORKER.encode()
    barrier("setup", mockserver_url)
    (mine,) = mockserver.retrieve_active_expectations()
    assert mine.http_response.body == WORKER
    assert len(mockserver.retrieve_recorded_requests()) == 1
"""


def test_xdist_workers_are_isolated_on_the_local_backend(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env.setenv("MS_OUT", str(out))
    pytester.makepyfile(XDIST_BARRIER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2)
    urls = {path.read_text() for path in out.glob("reset.*")}
    assert len(urls) == 2  # one engine per worker
    result.stdout.fnmatch_lines(["mockserver  local *"])  # ...from one shared process
    ports = [int(url.rsplit(":", 1)[1]) for url in urls]
    assert all(_port_closed(port) for port in ports)  # stopped after the run


# On a shared (external) server, tests using the fixtures hold a run-wide lock: the two
# workers' test bodies never overlap, and each sees only its own state.
XDIST_SHARED = """
import json, os, time, urllib.request
from pathlib import Path
from mockserver import HttpRequest, HttpResponse

OUT = Path(os.environ["MS_OUT"])
WORKER = os.environ["PYTEST_XDIST_WORKER"]

def test_exclusive(mockserver, mockserver_url, mockserver_service):
    started = time.time()
    assert mockserver_service.backend == "external"
    mockserver.when(HttpRequest(path="/who")).respond(HttpResponse(body=WORKER))
    for _ in range(30):
        assert urllib.request.urlopen(mockserver_url + "/who").read() == WORKER.encode()
    assert len(mockserver.retrieve_recorded_requests()) == 30
    (OUT / WORKER).write_text(json.dumps([started, time.time()]))
"""


def test_xdist_on_a_shared_server_serialises_mockserver_tests(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, engine: MockServerEngine, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env.setenv("MS_OUT", str(out))
    env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", engine.url)
    env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "auto")
    pytester.makepyfile(XDIST_SHARED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2)
    (a_start, a_end), (b_start, b_end) = (json.loads(p.read_text()) for p in out.iterdir())
    assert a_end <= b_start or b_end <= a_start, "the two workers' tests overlapped"


# ------------------------------------------------------------------------------- external


def test_external_url_points_at_a_running_engine(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, engine: MockServerEngine
) -> None:
    env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", engine.url)
    env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "auto")
    pytester.makepyfile(
        f"""
        import urllib.request
        from mockserver import HttpRequest, HttpResponse

        def test_external(mockserver, mockserver_service, mockserver_url):
            assert mockserver_service.backend == "external"
            assert mockserver_service.owned is False
            assert mockserver_service.version == "commons-engine"
            assert mockserver_url == "{engine.url}"
            mockserver.when(HttpRequest(path="/ext")).respond(HttpResponse(body="x"))
            assert urllib.request.urlopen(mockserver_url + "/ext").read() == b"x"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"mockserver  external *commons-engine*{engine.port}*"])
    # the request really went to the engine in this process, which is still running
    with open_client(engine.host, engine.port) as client:
        client.verify(HttpRequest(path="/ext"), VerificationTimes.once())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1:1080", "*MOCKSERVER_URL) is malformed*scheme must be http*"),
        ("https://127.0.0.1:1080", "*MOCKSERVER_URL) is malformed*https*"),
        ("http://127.0.0.1:1080/ctx", "*MOCKSERVER_URL) is malformed*context path*"),
    ],
)
def test_malformed_external_url_is_a_usage_error_with_the_reason(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", url)
    env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "auto")
    pytester.makepyfile("def test_ms(mockserver):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([problem])


class _NotMockServer(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"not found")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_external_url_that_is_not_a_mockserver_fails_fast(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotMockServer)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        env.setenv("PYTEST_COMMONS_MOCKSERVER_URL", f"http://127.0.0.1:{server.server_port}")
        env.setenv("PYTEST_COMMONS_MOCKSERVER_BACKEND", "external")
        pytester.makepyfile("def test_ms(mockserver):\n    pass\n")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*mockserver (external backend)*is not a MockServer*HTTP 404*"])
    assert result.duration < 30  # refused at once, not after the start timeout


def test_missing_client_skips_with_the_install_hint(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    # a conftest that hides the mockserver package from importlib's finders
    pytester.makeconftest(
        """
        import sys
        class _Hide:
            def find_spec(self, name, path=None, target=None):
                if name == "mockserver" or name.startswith("mockserver."):
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, _Hide())
        for mod in [m for m in sys.modules if m == "mockserver" or m.startswith("mockserver.")]:
            del sys.modules[mod]
        """
    )
    pytester.makepyfile("def test_ms(mockserver_service):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*mockserver-client is not installed*pytest-commons[[]mockserver[]]*"]
    )


REQUIRES_TEMPLATES = """
import pytest, urllib.request

@pytest.mark.requires(mockserver="templates")
def test_templated(mockserver_url, mockserver):
    import json
    body = {"httpRequest": {"path": "/hi"}, "httpResponseTemplate": {"templateType": "VELOCITY",
            "template": '{"statusCode": 200, "body": "hi $request.path"}'}}
    req = urllib.request.Request(mockserver_url + "/mockserver/expectation", method="PUT",
                                 data=json.dumps(body).encode())
    urllib.request.urlopen(req)
    assert urllib.request.urlopen(mockserver_url + "/hi").read() == b"hi /hi"
"""


@pytest.mark.parametrize("missing", ["skip", "fail"])
def test_requires_names_the_engine_and_the_remedy(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch, missing: str
) -> None:
    """Issue 16: a test needing a feature the commons engine lacks is skipped with the engine
    and the remedy, and fails under --services-missing=fail."""
    pytester.makepyfile(REQUIRES_TEMPLATES)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--mockserver-engine=commons",
        f"--services-missing={missing}",
        "-rsf",
    )
    result.assert_outcomes(**{"skipped" if missing == "skip" else "errors": 1})
    result.stdout.fnmatch_lines(
        [
            "*mockserver: templates: the commons engine does not honour templates: "
            "*--mockserver-engine=java*"
        ]
    )


def test_requires_runs_the_test_on_the_real_mockserver(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    import pwd

    from tests.helpers import mockserver_engine_name

    # pytester moves HOME: point the inner run at the real cache, where the jar is
    home = pwd.getpwuid(os.getuid()).pw_dir
    cache = os.environ.get("PYTEST_COMMONS_COMMONS_CACHE_DIR") or f"{home}/.cache/pytest-commons"
    env.setenv("PYTEST_COMMONS_COMMONS_CACHE_DIR", cache)
    if mockserver_engine_name() != "java":
        pytest.skip("the real MockServer is not here (Java and `pytest-commons fetch mockserver`)")
    pytester.makepyfile(REQUIRES_TEMPLATES)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--services-missing=fail", "--mockserver-engine=java"
    )
    result.assert_outcomes(passed=1)


def test_requires_refuses_an_unknown_feature(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        "import pytest\n@pytest.mark.requires(mockserver='teleport')\n"
        "def test_x(mockserver): pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*requires(mockserver='teleport'): unknown feature*templates*"])


RESTART = """
import httpx
from mockserver import HttpRequest, HttpResponse

from pytest_commons.services.mockserver.spec import open_client

def test_restart_keeps_the_port_and_serves(mockserver_service):
    assert mockserver_service.backend == "local"
    port = mockserver_service.info.port
    mockserver_service.restart()
    assert mockserver_service.info.port == port  # this process's engine is back on its port
    with open_client(mockserver_service.info.host, port) as client:
        client.when(HttpRequest(path="/after")).respond(HttpResponse(body="back"))
        assert httpx.get(f"{mockserver_service.info.url}/after").text == "back"

def test_the_fixture_works_after_the_restart(mockserver, mockserver_url):
    assert httpx.get(f"{mockserver_url}/after").status_code == 404  # reset for this test
    mockserver.when(HttpRequest(path="/next")).respond(HttpResponse(body="ok"))
    assert httpx.get(f"{mockserver_url}/next").text == "ok"
"""


def test_restart_keeps_the_fixture_working(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    """Restarting the shared engine process would pull it from under other xdist workers, so
    it is done in an inner run of its own (no xdist), which also runs under CI's `-n 2`."""
    pytester.makepyfile(RESTART)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)


LEAVES_NO_LOOP = """
import gc

def test_uses_the_client(mockserver):
    assert mockserver.has_started(attempts=1)

def test_after_it():
    gc.collect()  # an unclosed client event loop is reported here, as an error
"""


def test_the_mockserver_fixture_closes_its_client_event_loop(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    """mockserver-client's ``close()`` leaves its event loop open; the fixture closes it, or
    the garbage collector fails a later test with ``unclosed event loop`` under -W error."""
    env.setenv("PYTEST_COMMONS_MOCKSERVER_ENGINE", "commons")
    pytester.makepyfile(LEAVES_NO_LOOP)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",  # the order is the point: the collection comes after the client test
        "-W",
        "error::ResourceWarning",
        "-W",
        "error::pytest.PytestUnraisableExceptionWarning",
    )
    result.assert_outcomes(passed=2)
    assert "unclosed event loop" not in result.stdout.str()
