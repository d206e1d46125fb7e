"""xdist speed-up with services against the same suite without them.

    python benchmarks/xdist/run.py [--tests 200] [--rounds 3] [--work-ms 40]

Two suites of ``--tests`` tests, each test doing ≈``--work-ms`` of application work in Python
(a loop calibrated on this machine before the rounds):

- *control*: the work alone;
- *services*: the work, then a fresh PostgreSQL database (``postgres``: connect, one INSERT
  and SELECT) and a Redis round trip (``redis``: SET and GET), on the local backend.

Each suite runs with ``-n 0`` and ``-n 2`` (pytest-xdist), whole ``pytest`` processes, the four
runs alternating every round; only pytest-xdist and pytest-commons are loaded
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``), bytecode caching on, the user's warm cache. Printed:
min / median / max of every run, the speed-up ``t(-n 0) / t(-n 2)`` of the best and of the
median times, and the services' speed-up as a fraction of the control's (target ≥ 0.9).

``--phases`` adds, for the services suite under ``-n 2``, when each worker ran its first and
last test and how long its tests took in total (from a conftest hook), to show where the second
worker loses time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

WORK = """
def work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
"""

CONFTEST = (
    WORK
    + """
import json, os, time, pytest

N = int(os.environ["BENCH_WORK_N"])
SPANS = []

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._bench_t0 = time.time()

@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    SPANS.append((item._bench_t0, time.time()))
    return result

def pytest_sessionfinish(session):
    out = os.environ.get("BENCH_OUT")
    if out and SPANS:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
        with open(f"{out}.{worker}", "w") as f:
            json.dump(SPANS, f)

@pytest.fixture
def app_work():
    return lambda: work(N)
"""
)

CONTROL = """
import pytest

@pytest.mark.parametrize("i", range({tests}))
def test_app(app_work, i):
    assert app_work() >= 0
"""

SERVICES = """
import pytest

@pytest.mark.parametrize("i", range({tests}))
def test_app(app_work, postgres, redis, i):
    assert app_work() >= 0
    with postgres.connect() as conn:
        conn.execute("create table t (x int)")
        conn.execute("insert into t values (%s)", (i,))
        assert conn.execute("select x from t").fetchone() == (i,)
    redis.set("k", i)
    assert redis.get("k") == str(i).encode()
"""


#: CPU seconds of every run: pytest, its workers and every process they waited for (the
#: servers the run started included)
CPU: dict[tuple[str, int], list[float]] = {}


def calibrate(work_ms: float) -> int:
    """Iterations of ``work`` that take ``work_ms`` here (best of several timings)."""
    namespace: dict[str, object] = {}
    exec(WORK, namespace)
    work = namespace["work"]
    n = 100_000
    best = min(_time(work, n) for _ in range(5))  # type: ignore[arg-type]
    return int(n * work_ms / 1000 / best)


def _time(fn: object, n: int) -> float:
    t0 = time.perf_counter()
    fn(n)  # type: ignore[operator]
    return time.perf_counter() - t0


def run(workdir: Path, suite: str, workers: int, env: dict[str, str], out: str = "") -> float:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "xdist.plugin",
        "-p",
        "pytest_commons.plugin.hooks",
        "-n",
        str(workers),
        f"test_{suite}.py",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=workdir, env={**env, "BENCH_OUT": out}, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault((suite, workers), []).append(
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    )
    if proc.returncode != 0:
        sys.exit(f"{suite} -n {workers} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def phases(workdir: Path, env: dict[str, str]) -> None:
    out = str(workdir / "spans")
    t0 = time.time()
    total = run(workdir, "services", 2, env, out)
    print(f"\nservices -n 2, one more run ({total:.2f} s): per worker, s from the spawn")
    for path in sorted(workdir.glob("spans.*")):
        spans = json.loads(path.read_text())
        busy = sum(end - start for start, end in spans)
        first = spans[0][0] - t0
        last = spans[-1][1] - t0
        setup_first = spans[0][1] - spans[0][0]
        print(
            f"  {path.suffix[1:]}: {len(spans)} tests, first starts {first:.2f}, last ends "
            f"{last:.2f}, tests' time {busy:.2f} (first test {setup_first:.2f}), "
            f"median test {1000 * statistics.median(e - s for s, e in spans[1:]):.1f} ms"
        )
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-ms", type=float, default=40.0)
    parser.add_argument("--phases", action="store_true")
    opts = parser.parse_args()

    n = calibrate(opts.work_ms)
    workdir = Path(tempfile.mkdtemp(prefix="pc-bench-xdist-"))
    (workdir / "conftest.py").write_text(CONFTEST)
    (workdir / "test_control.py").write_text(CONTROL.format(tests=opts.tests))
    (workdir / "test_services.py").write_text(SERVICES.format(tests=opts.tests))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_COMMONS_", "PYTEST_ADDOPTS", "PYTEST_XDIST")) and k != "CI"
    }
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["BENCH_WORK_N"] = str(n)
    env["PYTHONPATH"] = str(REPO)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")

    runs = [(s, w) for s in ("control", "services") for w in (0, 2)]
    for suite, workers in runs:  # warm-up: caches, the initdb template
        run(workdir, suite, workers, env)
    times: dict[tuple[str, int], list[float]] = {r: [] for r in runs}
    load = [os.getloadavg()[0]]
    for _ in range(opts.rounds):
        for suite, workers in runs:
            times[(suite, workers)].append(run(workdir, suite, workers, env))
    load.append(os.getloadavg()[0])

    print(
        f"{opts.tests} tests, {opts.work_ms:.0f} ms of work each ({n} iterations), "
        f"{opts.rounds} rounds, load {load[0]:.1f} → {load[1]:.1f}"
    )
    for (suite, workers), ts in times.items():
        print(
            f"  {suite:9} -n {workers}: min {min(ts):.2f}  median {statistics.median(ts):.2f}"
            f"  max {max(ts):.2f}   runs {', '.join(f'{t:.2f}' for t in ts)}"
            f"   CPU s (median) {statistics.median(CPU[(suite, workers)][1:]):.2f}"
        )
    for pick, label in ((min, "best"), (statistics.median, "median")):
        ctl = pick(times[("control", 0)]) / pick(times[("control", 2)])
        svc = pick(times[("services", 0)]) / pick(times[("services", 2)])
        print(
            f"speed-up ({label} times): control {ctl:.2f}x, services {svc:.2f}x "
            f"→ {svc / ctl:.2f} of the control's (target ≥ 0.90)"
        )
    if opts.phases:
        phases(workdir, env)


if __name__ == "__main__":
    main()
