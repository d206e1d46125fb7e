"""Benchmark the in-process MockServer engine.

Measures, as medians over several rounds:

* start -> ready: ``MockServerEngine().start()`` until ``PUT /mockserver/status`` answers
  (target < 0.1 s);
* reset: ``engine.reset()`` with 10 expectations and 20 logged requests (a typical test),
  and with 100 expectations and 1,000 logged requests (heavy) (target < 1 ms);
* 1,000 matched requests through one ``httpx.Client`` (keep-alive), with 20 expectations
  active and the match on the last one (target < 1 s).

Run: ``python benchmarks/bench_mockserver.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time

import httpx

from pytest_commons.services.mockserver.engine import MockServerEngine

TARGETS = {
    "start_to_ready_s": 0.1,
    "reset_s": 0.001,
    "reset_heavy_s": 0.001,
    "requests_1000_s": 1.0,
}


def _upsert(client: httpx.Client, document: object) -> None:
    response = client.put("/mockserver/expectation", json=document)
    response.raise_for_status()


def bench_start(rounds: int) -> float:
    """Median seconds from start() until the status endpoint answers."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        engine = MockServerEngine().start()
        connection = http.client.HTTPConnection(engine.host, engine.port, timeout=5)
        connection.request("PUT", "/mockserver/status")
        status = connection.getresponse().status
        samples.append(time.perf_counter() - started)
        connection.close()
        engine.stop()
        if status != 200:
            raise RuntimeError(f"status answered {status}")
    return statistics.median(samples)


def bench_reset(rounds: int, expectations: int, requests: int) -> float:
    """Median seconds of a direct reset of an engine holding this much state."""
    samples = []
    with MockServerEngine() as engine, httpx.Client(base_url=engine.url) as client:
        for _ in range(rounds):
            _upsert(
                client,
                [
                    {"httpRequest": {"path": f"/r{i}"}, "httpResponse": {"body": "x"}}
                    for i in range(expectations)
                ],
            )
            for i in range(requests):
                client.get(f"/r{i % expectations}")
            started = time.perf_counter()
            engine.reset()
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


ITEMS = 20


def _arm(client: httpx.Client) -> None:
    """Reset, then load the 20 expectations; the requests match the last of them."""
    client.put("/mockserver/reset").raise_for_status()
    _upsert(
        client,
        [
            {
                "httpRequest": {"method": "GET", "path": f"/api/items/{i}"},
                "httpResponse": {"statusCode": 200, "body": {"id": i}},
            }
            for i in range(ITEMS)
        ],
    )


def _check_armed(client: httpx.Client) -> None:
    """What the round is advertised to measure: 20 expectations active, the request answered
    by the last one. Raises otherwise (checked outside the timed part)."""
    active = client.put("/mockserver/retrieve", params={"type": "ACTIVE_EXPECTATIONS"})
    active.raise_for_status()
    if len(active.json()) != ITEMS:
        raise RuntimeError(f"{len(active.json())} expectations active, not {ITEMS}")
    last = client.get(f"/api/items/{ITEMS - 1}")
    if last.status_code != 200 or last.json() != {"id": ITEMS - 1}:
        raise RuntimeError(f"the last expectation did not answer: {last.status_code}")


def bench_requests(rounds: int, count: int = 1000) -> float:
    """Median seconds for ``count`` requests through one keep-alive client, each round with
    20 expectations active and every request matching the last one."""
    samples = []
    with MockServerEngine() as engine, httpx.Client(base_url=engine.url) as client:
        for _ in range(rounds):
            _arm(client)  # every round measures the same case, not what the last one left
            _check_armed(client)
            started = time.perf_counter()
            for _ in range(count):
                response = client.get(f"/api/items/{ITEMS - 1}")
                if response.status_code != 200:
                    raise RuntimeError(f"unexpected status {response.status_code}")
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the figures, exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    results = {
        "start_to_ready_s": bench_start(args.rounds),
        "reset_s": bench_reset(args.rounds, 10, 20),
        "reset_heavy_s": bench_reset(args.rounds, 100, 1000),
        "requests_1000_s": bench_requests(args.rounds),
    }
    print(f"MockServer engine (median of {args.rounds} rounds, Python {sys.version.split()[0]})")
    missed = False
    for name, value in results.items():
        target = TARGETS[name]
        verdict = "ok" if value < target else "MISSED"
        missed = missed or value >= target
        print(f"  {name:<18} {value * 1000:9.3f} ms   (target < {target * 1000:g} ms) {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
