"""Async fixtures against their sync twins, and the live server's start → first request.

    python benchmarks/async/run.py [--tests 200] [--rounds 3] [--starts 20] [--only redis]

Per-test cost: each suite is N one-statement tests; a conftest hook times every test from the
start of its setup to the end of its teardown (fixture setup, body, teardown; the test runner
and the event loop included), in one pytest process per suite and round, the suites
interleaved. The first test of each suite (server start, template) is left out. Printed:
min / median / max per test over all rounds, and the async/sync ratio of the medians.

Live server: a FastAPI app and a Flask app, ``LiveServer(app).start()`` then one GET through
httpx, ``--starts`` times each; min / median / max of start → first response.

``--only redis`` (repeatable) runs the plain suites and the pairs whose names contain it, and
no live server. ``--against DIR`` (another checkout of the project, e.g. a ``git worktree`` of
the commit before a change) runs every suite on both trees, alternating, and prints both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

CONFTEST = """
import json, os, time, pytest

TIMES = []

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._bench_t0 = time.perf_counter()

@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    TIMES.append(time.perf_counter() - item._bench_t0)
    return result

def pytest_sessionfinish(session):
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(TIMES, f)

@pytest.fixture(scope="session")
def postgres_schema():
    return "CREATE TABLE t (id serial PRIMARY KEY, v int)"

@pytest.fixture(scope="session")
def mysql_schema():
    return "CREATE TABLE t (id int AUTO_INCREMENT PRIMARY KEY, v int)"
"""

SUITES: dict[str, str] = {
    "plain": """
def test_x(n):
    pass
""",
    "plain async": """
async def test_x(n):
    pass
""",
    "postgres_tx": """
def test_x(postgres_tx, n):
    postgres_tx.execute("INSERT INTO t (v) VALUES (%s)", (n,))
""",
    "postgres_tx_async": """
async def test_x(postgres_tx_async, n):
    await postgres_tx_async.execute("INSERT INTO t (v) VALUES (%s)", (n,))
""",
    "postgres + connect()": """
def test_x(postgres, n):
    with postgres.connect() as conn:
        conn.execute("INSERT INTO t (v) VALUES (%s)", (n,))
""",
    "postgres_async": """
async def test_x(postgres_async, n):
    await postgres_async.execute("INSERT INTO t (v) VALUES (%s)", (n,))
""",
    "redis": """
def test_x(redis, n):
    redis.set("k", n)
""",
    "redis_async": """
async def test_x(redis_async, n):
    await redis_async.set("k", n)
""",
    "mysql + connect()": """
def test_x(mysql, n):
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t (v) VALUES (%s)", (n,))
""",
    "mysql_async": """
async def test_x(mysql_async, n):
    conn = await mysql_async.connect()
    async with conn.cursor() as cur:
        await cur.execute("INSERT INTO t (v) VALUES (%s)", (n,))
""",
}
PAIRS = [
    ("postgres_tx", "postgres_tx_async"),
    ("postgres + connect()", "postgres_async"),
    ("redis", "redis_async"),
    ("mysql + connect()", "mysql_async"),
]

APPS = """
import time, httpx
from pytest_commons.live import LiveServer

def fastapi_app():
    from fastapi import FastAPI
    app = FastAPI()
    @app.get("/")
    async def home():
        return {"ok": True}
    return app

def flask_app():
    from flask import Flask
    app = Flask("bench")
    @app.get("/")
    def home():
        return "ok"
    return app

out = {}
for name, make in (("fastapi", fastapi_app), ("flask", flask_app)):
    times = []
    for _ in range(N):
        app = make()
        t0 = time.perf_counter()
        with LiveServer(app) as server:
            assert httpx.get(server.url + "/").status_code == 200
            times.append(time.perf_counter() - t0)
    out[name] = times
print(json.dumps(out))
"""


def run_suite(work: Path, name: str, tests: int, loop_scope: str, tree: Path = REPO) -> list[float]:
    body = SUITES[name]
    d = work / (name.replace(" ", "_").replace("+", "").replace("()", "") + loop_scope)
    d.mkdir(exist_ok=True)
    (d / "conftest.py").write_text(CONFTEST)
    param = (
        "import pytest\n\n"
        f"@pytest.fixture(params=range({tests}))\ndef n(request):\n    return request.param\n"
    )
    (d / "test_bench.py").write_text(param + body)
    out = d / "times.json"
    env = {**os.environ, "BENCH_OUT": str(out), "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
         "-o", f"asyncio_default_test_loop_scope={loop_scope}", str(d)],
        cwd=d, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return list(json.loads(out.read_text()))[1:]


def fmt(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{min(ms):.2f} / {statistics.median(ms):.2f} / {max(ms):.2f} ms"


def report(
    results: dict[tuple[str, str, Path], list[float]],
    tree: Path,
    pairs: list[tuple[str, str]],
    scopes: tuple[str, str],
    tests: int,
    rounds: int,
) -> None:
    print(f"per test ({tests} tests x {rounds} rounds), min / median / max;")
    print("net = median minus the median of the same kind of test with no fixture")
    base = statistics.median(results[("plain", "session", tree)])
    print(f"  {'plain (sync)':<34} {fmt(results[('plain', 'session', tree)])}")
    for scope in scopes:
        label = f"plain async, {scope} loop"
        print(f"  {label:<34} {fmt(results[('plain async', scope, tree)])}")
    for sync, aio in pairs:
        sync_net = statistics.median(results[(sync, "session", tree)]) - base
        print(
            f"  {sync:<34} {fmt(results[(sync, 'session', tree)])}   net {sync_net * 1000:.2f} ms"
        )
        for scope in scopes:
            abase = statistics.median(results[("plain async", scope, tree)])
            net = statistics.median(results[(aio, scope, tree)]) - abase
            label = f"{aio}, {scope} loop"
            print(
                f"  {label:<34} {fmt(results[(aio, scope, tree)])}   net {net * 1000:.2f} ms, "
                f"net ratio {net / sync_net:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--only", action="append", default=[], help="pairs whose names contain it")
    parser.add_argument("--against", type=Path, help="another checkout: both, alternating")
    args = parser.parse_args()
    trees = [REPO, args.against.resolve()] if args.against else [REPO]
    pairs = [p for p in PAIRS if not args.only or any(o in " ".join(p) for o in args.only)]
    names = ["plain", "plain async", *(name for pair in pairs for name in pair)]
    scopes = ("session", "function")
    results: dict[tuple[str, str, Path], list[float]] = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
        for round_ in range(args.rounds):
            for name in names:
                for scope in scopes if "async" in name else scopes[:1]:
                    # alternate which tree goes first
                    for tree in trees[round_ % 2 :] + trees[: round_ % 2]:
                        got = run_suite(Path(tmp), name, args.tests, scope, tree)
                        results.setdefault((name, scope, tree), []).extend(got)
    for tree in trees:
        if len(trees) > 1:
            print(f"== {tree}")
        report(results, tree, pairs, scopes, args.tests, args.rounds)
    if args.only:
        return
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", f"import json\nN = {args.starts}\n" + APPS],
        env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, capture_output=True, text=True,
    )  # fmt: skip
    print(f"live server start -> first response ({args.starts} starts each), min / median / max:")
    for name, times in json.loads(out.stdout.strip().splitlines()[-1]).items():
        print(f"  {name:<8} {fmt(times)}")
    print(f"(live server part: {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
