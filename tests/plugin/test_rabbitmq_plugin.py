"""The rabbitmq plugin in inner runs: the external backend (virtual hosts made, stamped,
deleted, dead runs' collected), a user who may not make virtual hosts, a malformed URL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.core.run import owner_stamp
from pytest_commons.services.rabbitmq.spec import RabbitmqInfo

INNER = """
def test_uses_its_own_vhost(rabbitmq):
    queue = rabbitmq.queue()
    rabbitmq.publish(queue, b"x")
    assert rabbitmq.consume(queue) == [b"x"]
    assert rabbitmq.vhost.startswith("pc_")
"""


@pytest.fixture
def api(rabbitmq_service: ServiceHandle[RabbitmqInfo]) -> Iterator[httpx.Client]:
    info = rabbitmq_service.info
    with httpx.Client(
        base_url=f"{info.management_url}/api", auth=(info.user, info.password), timeout=10
    ) as client:
        yield client


def _external(clean_env: pytest.MonkeyPatch, info: RabbitmqInfo) -> None:
    clean_env.setenv("PYTEST_COMMONS_RABBITMQ_URL", info.url)
    clean_env.setenv("PYTEST_COMMONS_RABBITMQ_MANAGEMENT_URL", info.management_url)


def _vhosts(api: httpx.Client) -> set[str]:
    return {v["name"] for v in api.get("/vhosts").json()}


def test_external_backend_makes_and_deletes_its_vhosts_and_collects_dead_runs(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    rabbitmq_service: ServiceHandle[RabbitmqInfo],
    api: httpx.Client,
) -> None:
    gone = subprocess.run(["true"], check=True)  # a pid that no longer runs
    assert gone.returncode == 0
    dead = owner_stamp("pc_1_dead_gw0") | {"pid": 2**22 + 7, "start": "1"}
    live = owner_stamp("pc_1_live_gw0")  # this process: alive
    made = {
        # dead runs' vhosts named before and after this run's own (pc_<digits>_…)
        "pc_0_dead_gw0": dead,
        "pc_z_dead_gw0": dead,
        "pc_1_live_gw0": live,
        "team_dead": dead,  # not named by the plugin: never touched, whatever it says
    }
    for name, stamp in made.items():
        created = api.put(f"/vhosts/{name}", json={"description": json.dumps(stamp)})
        assert created.status_code in (201, 204), created.text
    before = _vhosts(api)
    try:
        _external(clean_env, rabbitmq_service.info)
        pytester.makepyfile(INNER)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-p", "no:asyncio", "-n", "2", "--rabbitmq-backend=external"
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["rabbitmq*external*"])
        after = _vhosts(api)
        assert not {"pc_0_dead_gw0", "pc_z_dead_gw0"} & after  # a killed run's leftovers
        assert {"pc_1_live_gw0", "team_dead"} <= after  # a live run's, and others', are kept
        assert after - before == set(), "the run's own vhosts are deleted at its end"
    finally:
        for name in made:
            api.delete(f"/vhosts/{name}")


def test_a_user_who_may_not_make_vhosts_gets_the_remedy(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    rabbitmq_service: ServiceHandle[RabbitmqInfo],
    api: httpx.Client,
) -> None:
    from dataclasses import replace

    user = {"password": "limited-pw", "tags": "management"}
    assert api.put("/users/pc_limited", json=user).status_code in (201, 204)
    try:
        limited = replace(rabbitmq_service.info, user="pc_limited", password="limited-pw")
        _external(clean_env, limited)
        pytester.makepyfile(INNER)
        # no permission on the URL's vhost: the handshake says so, at once
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*rabbitmq (external backend): the user 'pc_limited' may not open the virtual "
                "host '/'*"
            ]
        )
        # allowed in '/', but not to make virtual hosts (no administrator tag)
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        assert api.put("/permissions/%2F/pc_limited", json=everything).status_code in (201, 204)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*rabbitmq (external backend): creating the virtual host 'pc_*': the "
                "management API answered 401*",
                "*remedy: give the user 'pc_limited' the administrator tag*",
            ]
        )
    finally:
        api.delete("/users/pc_limited")


def test_a_malformed_url_is_a_usage_error_naming_the_setting(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_RABBITMQ_URL", "http://127.0.0.1:5672/")
    pytester.makepyfile(INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "$PYTEST_COMMONS_RABBITMQ_URL" in err
    assert "scheme must be amqp://" in err


# each pair: the first test leaves something behind, the second (next in file order, on the same
# worker) checks it is gone
ORDERED = """
import contextlib
import time

import pika

from pytest_commons.services.rabbitmq.client import Rabbitmq


LEFT_OPEN: list[pika.BlockingConnection] = []


def test_1_a_test_leaves_queues_exchanges_bindings_and_a_connection(rabbitmq: Rabbitmq) -> None:
    channel = rabbitmq.connection().channel()
    channel.exchange_declare("left.x", exchange_type="fanout")
    channel.queue_declare("left.q")
    channel.queue_bind("left.q", "left.x")
    channel.exchange_bind("amq.direct", "amq.fanout")  # between built-in exchanges
    channel.basic_publish("", "left.q", b"x")
    own = pika.BlockingConnection(rabbitmq._worker.spec.parameters(rabbitmq.info))
    own.channel().queue_declare("exclusive.q", exclusive=True)  # not closed by the test
    LEFT_OPEN.append(own)  # (kept referenced: only its socket object is closed, in test 2)


def test_2_the_next_test_on_the_worker_finds_none_of_it(rabbitmq: Rabbitmq) -> None:
    api = rabbitmq._worker.api
    vhost = rabbitmq.vhost.replace("/", "%2F")
    assert api.get(f"/queues/{vhost}").json() == []
    names = {x["name"] for x in api.get(f"/exchanges/{vhost}").json()}
    assert not {"left.x"} & names
    assert all(not n or n.startswith("amq.") for n in names)
    e2e = [b for b in api.get(f"/bindings/{vhost}").json() if b["destination_type"] == "exchange"]
    assert e2e == []
    for conn in LEFT_OPEN:  # the broker closed it after test 1: pika learns it on its next read
        with contextlib.suppress(pika.exceptions.AMQPError):
            conn.process_data_events(time_limit=0)
        assert conn.is_closed


LEFT: dict[str, object] = {}


def test_3_a_test_leaves_its_clients_open(rabbitmq: Rabbitmq) -> None:
    closed_by_the_test = rabbitmq.connection()
    closed_by_the_test.close()  # the view must still close the ones after it
    LEFT["pika"] = rabbitmq.connection()
    kombu = rabbitmq.kombu_connection()
    kombu.connect()
    LEFT["kombu"] = kombu
    # one the management API lists (its statistics lag by seconds): closed server-side too
    own = pika.BlockingConnection(rabbitmq._worker.spec.parameters(rabbitmq.info))
    LEFT["own"] = own
    api, deadline = rabbitmq._worker.api, time.monotonic() + 30
    vhost = rabbitmq.vhost.replace("/", "%2F")
    while not api.get(f"/vhosts/{vhost}/connections").json():
        assert time.monotonic() < deadline, "the management API never listed the connections"
        time.sleep(0.2)


def test_4_they_were_closed_after_it(rabbitmq: Rabbitmq) -> None:
    assert LEFT["pika"].is_closed  # type: ignore[attr-defined]
    assert not LEFT["kombu"].connected  # type: ignore[attr-defined]
    own: pika.BlockingConnection = LEFT["own"]  # type: ignore[assignment]
    with contextlib.suppress(pika.exceptions.AMQPError):
        own.process_data_events(time_limit=0)  # pika learns of the server's close here
    assert own.is_closed


def test_5_a_test_leaves_exchanges_and_bindings_but_no_connection(rabbitmq: Rabbitmq) -> None:
    # (no connection holds a queue: the vhost is emptied piece by piece, not made again)
    channel = rabbitmq.channel()
    channel.exchange_declare("kept.x", exchange_type="topic")
    channel.queue_declare("kept.q")
    channel.queue_bind("kept.q", "kept.x", routing_key="#")
    channel.exchange_bind("amq.direct", "amq.topic", routing_key="k")  # built-in to built-in
    channel.exchange_bind("kept.x", "amq.fanout")


def test_6_the_next_test_finds_none_of_them(rabbitmq: Rabbitmq) -> None:
    api = rabbitmq._worker.api
    vhost = rabbitmq.vhost.replace("/", "%2F")
    assert [q["name"] for q in api.get(f"/queues/{vhost}").json()] == []
    exchanges = {x["name"] for x in api.get(f"/exchanges/{vhost}").json()}
    assert "kept.x" not in exchanges
    bindings = api.get(f"/bindings/{vhost}").json()
    assert [b for b in bindings if b["source"]] == [], bindings  # only the default exchange's
"""


def test_each_test_starts_with_nothing_an_earlier_test_left(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    rabbitmq_service: ServiceHandle[RabbitmqInfo],
) -> None:
    _external(clean_env, rabbitmq_service.info)
    pytester.makepyfile(ORDERED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=6)


def test_a_slow_start_says_what_it_waits_for_on_the_terminal_not_in_the_test_output(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """The local node takes ≈3-5 s: after 1 s a line on the terminal (the run's stderr) says
    what the plugin waits for; the test's captured output does not get it."""
    pytester.makepyfile("def test_a(rabbitmq):\n    assert rabbitmq.url\n")
    result = pytester.runpytest_subprocess("--rabbitmq-backend=local", "-rA")
    result.assert_outcomes(passed=1)
    waits = [line for line in result.errlines if "rabbitmq (local backend) is starting" in line]
    assert waits, result.stderr.str()
    assert "waiting for it to answer (last probe:" in waits[0]
    assert not any("is starting" in line for line in result.outlines)
