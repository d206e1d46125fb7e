"""``redis_isolation = db | server``: what is server-global (pub/sub) meets across xdist
workers on one server, and does not with a server per worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin.test_kafka_plugin import _wait_dead

pytestmark = pytest.mark.usefixtures("clean_env")

PUBSUB_TEST = """
import os, time

def _wait_for(barrier, name):
    deadline = time.monotonic() + 60
    while len([p for p in os.listdir(barrier) if p.startswith(name)]) < 2:
        assert time.monotonic() < deadline, "the other worker never reached " + name
        time.sleep(0.01)

def test_channel(redis, redis_service):
    me = os.environ["PYTEST_XDIST_WORKER"]
    barrier = os.environ["BARRIER_DIR"]
    pubsub = redis.pubsub()
    pubsub.subscribe("news")
    pubsub.get_message(timeout=5)  # the subscribe confirmation
    open(os.path.join(barrier, "subscribed-" + me), "w").close()
    _wait_for(barrier, "subscribed-")
    receivers = redis.publish("news", me)  # how many subscribers heard it, server-wide
    with open(os.path.join(barrier, "published-" + me), "w") as fh:
        fh.write(f"{receivers} {redis_service.info.port} {redis_service.instance.pid}")
    _wait_for(barrier, "published-")  # both still subscribed while the other publishes
    pubsub.close()
"""


@pytest.mark.parametrize("isolation", ["db", "server"])
def test_redis_isolation_server_keeps_pubsub_apart_across_workers(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, barrier: Path, isolation: str
) -> None:
    pytest.importorskip("xdist")
    clean_env.setenv("PYTEST_COMMONS_REDIS_ISOLATION", isolation)
    pytester.makepyfile(PUBSUB_TEST)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each", "--redis-backend=local")
    result.assert_outcomes(passed=2)
    seen = {
        p.name.split("-", 1)[1]: p.read_text().split()
        for p in barrier.iterdir()
        if p.name.startswith("published-")
    }
    assert set(seen) == {"gw0", "gw1"}
    receivers = {int(v[0]) for v in seen.values()}
    ports = {v[1] for v in seen.values()}
    if isolation == "db":
        assert receivers == {2}, "one server: both subscribers hear each message"
        assert len(ports) == 1
        return
    assert receivers == {1}, "a server per worker: each hears only its own"
    assert len(ports) == 2
    result.stdout.fnmatch_lines(["redis@gw0 *local*", "redis@gw1 *local*"])
    for _, _, pid in seen.values():
        assert _wait_dead(int(pid)), "a worker's server outlived the run"
