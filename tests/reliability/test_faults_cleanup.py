"""Fault proxies die with their run: after kill -9 of pytest, the run's toxiproxy-server is
stopped by the reaper and no proxy port (either engine) still accepts connections."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.test_cleanup import _alive, _env, _wait_for

pytestmark = pytest.mark.reliability

HOLDING_TEST = """
import json, os, time
import pytest

@pytest.mark.parametrize("faults_engine", ["builtin", "toxiproxy"])
def test_hold(faults, faults_engine, redis_url, request):
    from pytest_commons.plugin.state import get_registry
    ctx = get_registry(request.config).ctx
    proxy = faults.proxy("redis")
    proxy.latency(10)
    out = {out!r}
    state = json.load(open(out)) if os.path.exists(out) else {{"ports": []}}
    state["ports"].append(proxy.port)
    state["run_dir"] = str(ctx.run_dir)
    record = ctx.read("toxiproxy")
    state["toxiproxy_pid"] = record.pid if record else None
    if faults_engine == "builtin":
        json.dump(state, open(out, "w"))
        return  # the builtin proxy was deleted at teardown; the next test holds a new one
    state["broker_pid"] = faults.proxy("kafka").instance.pid  # a broker behind a proxy
    with open(out + ".tmp", "w") as fh:
        json.dump(state, fh)
    os.replace(out + ".tmp", out + ".ready")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:   # held until the outer test kills this run
        time.sleep(0.05)
"""


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_kill_9_stops_toxiproxy_every_proxy_and_the_brokers_behind_them(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from pytest_commons.faults.fixtures import toxiproxy_binary

    if toxiproxy_binary(request.config) is None:
        pytest.skip("toxiproxy-server is not installed here (scripts/setup.sh installs it)")
    out = tmp_path / "state.json"
    (tmp_path / "test_hold.py").write_text(HOLDING_TEST.format(out=str(out)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--backend-order=local"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    ready = Path(str(out) + ".ready")
    _wait_for(lambda: ready.exists() or proc.poll() is not None, 60, "the inner run to hold")
    if not ready.exists():
        pytest.fail("inner run ended early:\n" + proc.communicate()[0].decode())
    state = json.loads(ready.read_text())
    pid, (builtin_port, toxiproxy_port) = state["toxiproxy_pid"], state["ports"]
    broker = state["broker_pid"]
    assert _alive(pid)
    assert _alive(broker)
    assert not _refused(toxiproxy_port)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()
    _wait_for(lambda: not _alive(pid), 15, f"toxiproxy-server pid {pid} to exit")
    _wait_for(lambda: not _alive(broker), 30, f"the proxied Kafka broker pid {broker} to exit")
    _wait_for(lambda: not Path(state["run_dir"]).exists(), 15, "the run directory to be removed")
    assert _refused(toxiproxy_port)
    assert _refused(builtin_port)
