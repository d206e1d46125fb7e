"""MockServer through the fixtures: service ready, per-test reset, 1,000 matched requests.

1. ready: spawn of the local backend's engine process (``python -m
   pytest_commons.services.mockserver.engine``) → first answered ``PUT /mockserver/status``, and
   claiming a per-worker engine from it.
2. reset: ``PUT /mockserver/reset`` on a worker engine holding 10 expectations and 20 logged
   requests (what the fixture does before each test).
3. suites: the whole ``pytest`` process for 100 tests (expectation + request + verify, and
   tests that only request the fixture) with pytest-commons' ``mockserver`` fixture, with
   mockserver-client's own plugin fixture pointed at an engine (``MOCKSERVER_HOST``/``PORT``,
   ``-p no:commons``), and plain pytest (100 empty tests) as the floor.
4. throughput: 1,000 matched requests (20 expectations) through one ``httpx.Client`` inside a
   test using ``mockserver_url`` (timed in the test), against the in-process engine figure of
   ``benchmarks/bench_mockserver.py``.

Usage::

    python benchmarks/mockserver/run.py --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINE = "pytest_commons.services.mockserver.engine"
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pytest_commons.core.host import free_port  # noqa: E402
from pytest_commons.services.mockserver.engine import MockServerEngine  # noqa: E402
from pytest_commons.services.mockserver.spec import (  # noqa: E402
    MockServerInfo,
    MockServerSpec,
    open_client,
)

N = 100

SUITE = """
import urllib.request, pytest
from mockserver import HttpRequest, HttpResponse, VerificationTimes

@pytest.mark.parametrize("i", range({n}))
def test_call(mockserver, mockserver_host, mockserver_port, i):
    mockserver.when(HttpRequest(path="/item")).respond(HttpResponse(body=str(i)))
    url = f"http://{{mockserver_host}}:{{mockserver_port}}/item"
    assert urllib.request.urlopen(url).read() == str(i).encode()
    mockserver.verify(HttpRequest(path="/item"), VerificationTimes.once())
"""
FIXTURE_ONLY = """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_fixture(mockserver, i):
    pass
"""
EMPTY = """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_nothing(i):
    pass
"""
THROUGHPUT = """
import time, httpx
from mockserver import HttpRequest, HttpResponse

def test_thousand(mockserver, mockserver_url):
    for k in range(20):
        mockserver.when(HttpRequest(path=f"/e{{k}}")).respond(HttpResponse(body=str(k)))
    with httpx.Client(base_url=mockserver_url) as client:
        client.get("/e0")
        started = time.perf_counter()
        for i in range(1000):
            assert client.get(f"/e{{i % 20}}").status_code == 200
        print(f"THROUGHPUT={{time.perf_counter() - started:.4f}}")
"""


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_COMMONS_", "PYTEST_XDIST_", "PYTEST_ADDOPTS", "MOCKSERVER_"))
        and k != "CI"
    }
    env["PYTEST_COMMONS_MOCKSERVER_BACKEND"] = "local"
    env["MOCKSERVER_SKIP_BINARY_DOWNLOAD"] = "1"
    env.update(extra)
    return env


def ready_times(repeat: int) -> tuple[list[float], list[float]]:
    spec = MockServerSpec()
    spawn, claim = [], []
    for _ in range(repeat):
        port = free_port()
        info = MockServerInfo("127.0.0.1", port)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", ENGINE, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = started + 30
            while True:
                try:
                    spec.probe(info, timeout=1)
                    break
                except Exception:
                    if time.perf_counter() > deadline:
                        raise
                    time.sleep(0.002)
            spawn.append(time.perf_counter() - started)
            t = time.perf_counter()
            spec.claim_engine(info, "bench")
            claim.append(time.perf_counter() - t)
        finally:
            proc.terminate()
            proc.wait(10)
    return spawn, claim


def reset_times(rounds: int = 4, per_round: int = 50) -> list[float]:
    """Fill the engine (10 expectations, 20 logged requests), then time resets."""
    import httpx
    from mockserver import HttpRequest, HttpResponse

    spec = MockServerSpec()
    times = []
    with MockServerEngine() as engine, open_client(engine.host, engine.port) as client:
        info = MockServerInfo(engine.host, engine.port)
        with httpx.Client(base_url=engine.url) as http:
            for _ in range(rounds):
                for _ in range(per_round):
                    for k in range(10):
                        client.when(HttpRequest(path=f"/p{k}")).respond(HttpResponse(body="x"))
                    for k in range(20):
                        http.get(f"/p{k % 10}")
                    started = time.perf_counter()
                    spec.reset(info)
                    times.append(time.perf_counter() - started)
    return times


def pytest_run(source: str, env: dict[str, str], *args: str) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_bench.py").write_text(source)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"inner run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    med = statistics.median

    spawn, claim = ready_times(args.repeat)
    print(
        f"engine process ready (spawn → status): median {med(spawn) * 1e3:.0f} ms "
        f"(min {min(spawn) * 1e3:.0f}, max {max(spawn) * 1e3:.0f})"
    )
    print(f"claim a worker engine:               median {med(claim) * 1e3:.2f} ms")

    resets = reset_times()
    print(
        f"reset (PUT /mockserver/reset):       median {med(resets) * 1e3:.2f} ms, "
        f"p95 {sorted(resets)[int(len(resets) * 0.95)] * 1e3:.2f} ms"
    )

    ours, theirs, empty, through, bare_ours, bare_theirs = [], [], [], [], [], []
    for _ in range(args.repeat):
        t, out = pytest_run(SUITE.format(n=N), _env())
        ours.append(t)
        m = re.search(r"mockserver\s+local\s+\S+ \S+\s+ready in ([0-9.]+)s", out)
        with MockServerEngine() as engine:
            env = _env(MOCKSERVER_HOST=engine.host, MOCKSERVER_PORT=str(engine.port))
            t2, _ = pytest_run(SUITE.format(n=N), env, "-p", "no:commons")
        theirs.append(t2)
        t3, _ = pytest_run(EMPTY.format(n=N), _env(), "-p", "no:commons")
        empty.append(t3)
        bare_ours.append(pytest_run(FIXTURE_ONLY.format(n=N), _env())[0])
        with MockServerEngine() as engine:
            env = _env(MOCKSERVER_HOST=engine.host, MOCKSERVER_PORT=str(engine.port))
            bare_theirs.append(pytest_run(FIXTURE_ONLY.format(n=N), env, "-p", "no:commons")[0])
        _, out = pytest_run(THROUGHPUT.format(), _env())
        found = re.search(r"THROUGHPUT=([0-9.]+)", out)
        assert found, out
        through.append(float(found.group(1)))
        if m:
            print(f"  (registry: service ready in {m.group(1)} s)")
    print(
        f"{N} tests, pytest-commons `mockserver`:          median {med(ours):.2f} s "
        f"({json.dumps([round(x, 2) for x in ours])})"
    )
    print(
        f"{N} tests, mockserver-client plugin on an engine: median {med(theirs):.2f} s "
        f"({json.dumps([round(x, 2) for x in theirs])})"
    )
    print(f"{N} empty tests, plain pytest:                    median {med(empty):.2f} s")
    print(f"{N} tests with only `mockserver`, pytest-commons: median {med(bare_ours):.2f} s")
    print(f"{N} tests with only `mockserver`, their plugin:   median {med(bare_theirs):.2f} s")
    print(
        f"1,000 matched requests via mockserver_url:        median {med(through):.3f} s "
        f"({json.dumps([round(x, 3) for x in through])})"
    )


if __name__ == "__main__":
    main()
