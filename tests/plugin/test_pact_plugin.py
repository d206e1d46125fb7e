"""Pact, seen from pytest: the consumer fixture writes one deterministic pact file per pair
(also under xdist), the provider marker makes one test item per interaction and verifies it
against a real HTTP provider, and every bad input names the interaction or the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("clean_env")
# inner runs load every installed plugin: these tests check how ours lives beside them
INNER_ALL_PLUGINS = True

CONSUMER = """
import httpx
import pytest
from pact import match

pytestmark = pytest.mark.pact(consumer="web", provider="orders-api")

@pytest.mark.parametrize("order_id", [1, 2, 3, 4])
def test_get_order(pact, order_id):
    (
        pact.upon_receiving(f"get order {order_id}")
        .given("an order exists", id=order_id)
        .with_request("GET", f"/orders/{order_id}")
        .will_respond_with(200)
        .with_body({"id": match.int(order_id), "status": match.str("open")}, "application/json")
    )
    with pact.serve() as srv:
        assert srv.url.host == "127.0.0.1"
        body = httpx.get(f"{srv.url}/orders/{order_id}").json()
    assert body == {"id": order_id, "status": "open"}

def test_missing_order(pact):
    (
        pact.upon_receiving("get a missing order")
        .with_request("GET", "/orders/999")
        .will_respond_with(404)
    )
    with pact.serve() as srv:
        assert httpx.get(f"{srv.url}/orders/999").status_code == 404
"""

# A real HTTP provider (the stdlib's server in a thread) whose data the state handlers set.
PROVIDER = """
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest

ORDERS = {}
FIELD = "status"

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        order_id = int(self.path.rsplit("/", 1)[-1])
        if order_id in ORDERS:
            body, code = json.dumps({"id": order_id, FIELD: ORDERS[order_id]}).encode(), 200
        else:
            body, code = b"", 404
        self.send_response(code)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

@pytest.fixture(scope="module")
def provider_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()

@pytest.fixture(autouse=True)
def empty():
    ORDERS.clear()

def order_exists(params):
    ORDERS[int(params["id"])] = "open"

@pytest.mark.pact_provider("orders-api", pact_dir=PACTS)
def test_orders_api(pact_interaction, provider_url):
    pact_interaction.verify(provider_url, states={"an order exists": order_exists})
"""


def _consumer_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_consumer=CONSUMER)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_consumer_writes_one_sorted_file_identical_across_runs_and_xdist(
    pytester: pytest.Pytester,
) -> None:
    result = _consumer_run(pytester, "-n", "2")
    result.assert_outcomes(passed=5)
    pact_file = pytester.path / "pacts" / "web-orders-api.json"
    result.stdout.fnmatch_lines(
        ["*commons pact*", "pact pacts/web-orders-api.json (5 interactions, written)"]
    )
    first = pact_file.read_bytes()
    doc = json.loads(first)
    names = [i["description"] for i in doc["interactions"]]
    assert names == sorted(names)
    assert len(names) == 5
    assert doc["consumer"] == {"name": "web"}
    # serial, then xdist again: the same bytes, and the file is left untouched
    for args in ((), ("-n", "2")):
        again = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        again.assert_outcomes(passed=5)
        again.stdout.fnmatch_lines(["pact pacts/web-orders-api.json (5 interactions, unchanged)"])
        assert pact_file.read_bytes() == first
    # no fragments left in the run directory
    assert not list(pytester.path.rglob("pact-*/*/*.json"))


def test_a_failing_consumer_test_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fail="""
        import httpx, pytest

        @pytest.mark.pact(consumer="web", provider="api")
        def test_wrong_path(pact):
            pact.upon_receiving("ping").with_request("GET", "/ping").will_respond_with(204)
            with pact.serve() as srv:
                httpx.get(f"{srv.url}/pong")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert not (pytester.path / "pacts").exists()


def test_write_mode_merge_keeps_and_overwrite_drops_other_interactions(
    pytester: pytest.Pytester,
) -> None:
    _consumer_run(pytester).assert_outcomes(passed=5)
    pact_file = pytester.path / "pacts" / "web-orders-api.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "missing")
    result.assert_outcomes(passed=1, deselected=4)
    assert len(json.loads(pact_file.read_text())["interactions"]) == 5
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-k", "missing", "--pact-write-mode=overwrite"
    )
    result.assert_outcomes(passed=1, deselected=4)
    assert [i["description"] for i in json.loads(pact_file.read_text())["interactions"]] == [
        "get a missing order"
    ]


def test_missing_names_are_a_clear_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_no_names(pact):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the pact fixture has no consumer and provider name*pytest.mark.pact*"]
    )


def _provider(pytester: pytest.Pytester, pacts: Path, source: str = PROVIDER) -> None:
    pytester.makepyfile(test_provider=f"PACTS = {str(pacts)!r}\n" + source)


@pytest.fixture
def pacts(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pact file the consumer suite above writes, in a directory of its own."""
    out = tmp_path_factory.mktemp("pacts")
    _consumer_run(pytester, f"--pact-dir={out}").assert_outcomes(passed=5)
    (pytester.path / "test_consumer.py").unlink()
    return out


def test_provider_one_item_per_interaction_verified(pytester: pytest.Pytester, pacts: Path) -> None:
    _provider(pytester, pacts)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "*test_orders_api?web:get a missing order? PASSED*",
            "*test_orders_api?web:get order 1 given an order exists? PASSED*",
        ]
    )
    # -k selects single interactions; xdist spreads them
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-k", "4")
    result.assert_outcomes(passed=1)


def test_provider_mismatch_fails_with_pacts_text(pytester: pytest.Pytester, pacts: Path) -> None:
    _provider(pytester, pacts, PROVIDER.replace('FIELD = "status"', 'FIELD = "state"'))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "pact: web → orders-api: 'get order 1' (given an order exists) "
            "failed verification at http://127.0.0.1:*",
            "*Actual map is missing the following keys: status*",
        ]
    )


def test_provider_state_without_handler_names_the_interaction(
    pytester: pytest.Pytester, pacts: Path
) -> None:
    _provider(pytester, pacts, PROVIDER.replace('{"an order exists": order_exists}', "{}"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*provider state 'an order exists' of web → orders-api: 'get order 1' "
            "(given an order exists) has no handler (handlers given: none)*"
        ]
    )


def test_provider_not_running_names_the_interaction(pytester: pytest.Pytester, pacts: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _provider(
        pytester,
        pacts,
        PROVIDER.replace(
            "pact_interaction.verify(provider_url,",
            f"pact_interaction.verify('http://127.0.0.1:{port}',",
        ),
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(
        [
            "*the provider for web → orders-api: 'get a missing order' is not running at "
            f"http://127.0.0.1:{port}*"
        ]
    )


def test_invalid_pact_file_is_a_collection_error_naming_it(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    bad = tmp_path / "web-orders-api.json"
    bad.write_text('{"consumer": {"name": "web"}, "interactions": [}')
    _provider(pytester, tmp_path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*pact file {bad}: is not valid JSON*"])
    bad.write_text('{"consumer": {"name": "web"}, "interactions": []}')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"*pact file {bad}: has no provider.name*"])


def test_no_pact_for_the_provider_skips_with_the_reason(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    _provider(pytester, tmp_path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [f"*no pact for provider 'orders-api' in {tmp_path} (run the consumer tests first*"]
    )
