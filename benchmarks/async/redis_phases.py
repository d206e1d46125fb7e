"""Where a ``redis_async`` test's time goes on a new event loop, in CPU time, in one process.

    PYTHONPATH=. python benchmarks/async/redis_phases.py [--tests 1000] [--rounds 3]

One "test" is what pytest-asyncio does on a function-scoped loop: a new ``asyncio.Runner``,
the fixture's client (``redis_async``'s own pool class), one ``SET``, the fixture's teardown
(``settle``), the runner's close. Next to it: the same with no client (a plain async test) and a
sync ``SET`` on one redis-py connection (what the sync ``redis`` fixture adds). Timed with
``time.process_time()``, so a loaded machine's waits for a CPU are left out; the round trip's
wait for the server is left out too. Printed: min / median / max over the rounds of each
round's median, and each phase's median. Run it with ``PYTHONPATH`` at another checkout to
compare (it uses the fixture's internals of that checkout). It starts its own redis-server on a
free port and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import redis
from redis.asyncio import Redis

from pytest_commons.plugin.aio import LoopResources
from pytest_commons.services.redis import aio
from pytest_commons.services.redis.spec import RedisInfo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def noop() -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    tmp = tempfile.mkdtemp()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tmp],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sync = redis.Redis(host="127.0.0.1", port=port, db=3)
        for _ in range(500):
            try:
                sync.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        info = RedisInfo(host="127.0.0.1", port=port, db=3)
        resources = LoopResources()
        idle = aio._Idle()
        idle.sockets = aio._Sockets(info)
        pool_class = idle.pool_class(resources, idle.sockets)
        phases: dict[str, list[float]] = {}

        def mark(name: str, t0: float) -> float:
            t = time.process_time()
            phases.setdefault(name, []).append(t - t0)
            return t

        def plain() -> None:
            runner = asyncio.Runner()
            runner.run(noop())
            runner.close()

        def sync_set() -> None:
            sync.set("k", 1)

        def redis_async() -> None:
            runner = asyncio.Runner()
            runner.run(noop())  # pytest-asyncio's loop exists before the fixtures
            t = time.process_time()
            pool = pool_class(
                connection_class=pool_class.bound_connection, host=info.host, port=info.port,
                db=info.db, socket_connect_timeout=5, client_name="pytest-commons",
            )  # fmt: skip
            client = Redis(connection_pool=pool)
            t = mark("make the client", t)

            async def body() -> None:
                t = time.process_time()
                conn = await pool.get_connection()
                t = mark("get_connection (connect or kept)", t)
                await pool.release(conn)
                t = mark("release", t)
                await client.set("k", 1)
                mark("SET", t)

            runner.run(body())
            t = time.process_time()
            idle.settle(pool.commons_made)
            t = mark("settle (fixture teardown)", t)
            runner.close()
            mark("runner.close()", t)

        variants: dict[str, Callable[[], None]] = {
            "plain async (new loop)": plain,
            "sync SET": sync_set,
            "redis_async test (new loop)": redis_async,
        }
        for run in variants.values():
            for _ in range(50):
                run()
        phases.clear()
        per_round: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                times = []
                for _ in range(args.tests):
                    t0 = time.process_time()
                    run()
                    times.append(time.process_time() - t0)
                per_round[name].append(statistics.median(times))
        print(f"CPU per test ({args.tests} x {args.rounds} rounds), min / median / max of medians:")
        for name, values in per_round.items():
            us = [v * 1e6 for v in values]
            print(f"  {name:<34} {min(us):6.1f} / {statistics.median(us):6.1f} / {max(us):6.1f} us")
        print("phases of the redis_async test, median:")
        for name, values in phases.items():
            print(f"  {name:<34} {statistics.median(values) * 1e6:6.1f} us")
        idle.settle([])
        if hasattr(idle, "close"):
            idle.close()
        resources.close()
        idle.sockets.close()
        sync.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
