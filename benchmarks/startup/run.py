"""What loading the plugin costs, and how soon after pytest's start the first Postgres test runs.

Three measures, each over ``--rounds`` fresh processes of ``--python`` (default: this Python;
point it at a virtualenv with only ``pytest-commons[postgres]`` for the lean install; give
``--python`` twice, e.g. before and after a change, and their runs alternate too):

1. **import**: ``python -X importtime`` of what pytest imports when it loads the plugin (the
   ``pytest11`` entry points, then every module ``pytest_addhooks`` registers), after pytest and
   its own built-in plugins are loaded (``_pytest.config.get_config()``), so only what the
   plugin adds is counted: the sum of the cumulative microseconds of the top-level imports.
   The modules a run never needs at load (drivers, testcontainers, boto3, SQLAlchemy, ...) are
   checked to be absent.
2. **collect**: whole ``pytest --co -q`` processes on a one-test file, with the plugin and
   without it (``-p no:commons -p no:pytest_commons.coverage_gate``), alternating.
3. **first test**: from launching ``pytest`` to the first line of a test that uses the
   ``postgres`` fixture (local server, warm initdb cache), against the floor: plain pytest (the
   plugin disabled) to the first line of a test that uses nothing. Alternating.

Bytecode caching is on, as in a user's own virtualenv (this machine's shell sets
``PYTHONDONTWRITEBYTECODE=1``): a private ``PYTHONPYCACHEPREFIX``, filled by a warm-up run.

Usage::

    python benchmarks/startup/run.py --rounds 10
    python benchmarks/startup/run.py --rounds 10 --python /tmp/lean-venv/bin/python
    python benchmarks/startup/run.py --python /tmp/before/bin/python --python /tmp/after/bin/python
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

#: modules a run that uses no service must not import when the plugin loads
HEAVY = (
    "psycopg",
    "redis",
    "pymysql",
    "aiomysql",
    "confluent_kafka",
    "aiokafka",
    "boto3",
    "botocore",
    "moto",
    "httpx",
    "testcontainers",
    "docker",
    "sqlalchemy",
    "faker",
    "hypothesis",
    "pika",
    "asyncio",
    "ssl",
    "urllib.request",
)

MARK = "--- plugin import starts ---"
IMPORT_SNIPPET = f"""
import sys, time
import pytest
from _pytest.config import get_config
get_config()  # pytest's own built-in plugins: what a pytest process has before it loads ours
print({MARK!r}, file=sys.stderr, flush=True)
t0 = time.perf_counter()
# __import__, not importlib.import_module: -X importtime only reports the former's imports
hooks = __import__("pytest_commons.plugin.hooks", fromlist=["x"])
__import__("pytest_commons.coverage_gate")
for name in hooks.fixture_modules():
    __import__(name)
elapsed = time.perf_counter() - t0
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(elapsed, ",".join(heavy))
"""

TRIVIAL = "def test_nothing():\n    pass\n"
FIRST_PG = """
import os, time
def test_first(postgres):
    with open(os.environ["FIRST_OUT"], "w") as fh:
        fh.write(repr(time.time()))
"""
FIRST_PLAIN = """
import os, time
def test_first():
    with open(os.environ["FIRST_OUT"], "w") as fh:
        fh.write(repr(time.time()))
"""
NO_PLUGIN = ["-p", "no:commons", "-p", "no:pytest_commons.coverage_gate"]


def parse_importtime(stderr: str) -> tuple[int, list[tuple[int, str]]]:
    """Sum of the cumulative µs of the top-level imports after MARK, and those imports."""
    roots: list[tuple[int, str]] = []
    after = False
    for line in stderr.splitlines():
        if line.startswith(MARK):
            after = True
            continue
        if not after or not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not name.startswith("  "):  # depth 0: one space after the bar
            roots.append((int(cumulative), name.strip()))
    return sum(c for c, _ in roots), roots


def spread(values: list[float], unit: str = "ms") -> str:
    """min / median / max, in ms (values in seconds) or s."""
    scale, digits = (1000.0, 1) if unit == "ms" else (1.0, 3)
    points = (min(values), statistics.median(values), max(values))
    lo, mid, hi = (round(v * scale, digits) for v in points)
    return f"min {lo} / median {mid} / max {hi} {unit}"


def alternate(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each run once per round, in turn, after one unmeasured warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for measured in [False] + [True] * rounds:
        for name, run in runs.items():
            value = run()
            if measured:
                times[name].append(value)
    return times


def show(times: dict[str, list[float]], unit: str = "ms") -> None:
    width = max(len(name) for name in times)
    for name, values in times.items():
        runs = ", ".join(f"{v * 1000:.0f}" if unit == "ms" else f"{v:.3f}" for v in values)
        print(f"  {name:<{width}}  {spread(values, unit)}  (runs: {runs})")


def pytest_cmd(python: str, *args: str) -> list[str]:
    return [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def measure_import(pythons: list[str], env: dict[str, str], workdir: Path, rounds: int) -> None:
    last: dict[str, tuple[list[tuple[int, str]], str]] = {}

    def importtime(python: str) -> float:
        timed = subprocess.run(
            [python, "-X", "importtime", "-c", IMPORT_SNIPPET],
            cwd=workdir,  # not a checkout: `-c` puts the working directory on sys.path
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        total, roots = parse_importtime(timed.stderr)
        last[python] = (roots, timed.stdout.strip().partition(" ")[2])
        return total / 1e6

    def wall(python: str) -> float:
        plain = subprocess.run(
            [python, "-c", IMPORT_SNIPPET],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return float(plain.stdout.split()[0])

    runs: dict[str, Callable[[], float]] = {}
    for python in pythons:
        runs[f"{python}: -X importtime sum"] = partial(importtime, python)
        runs[f"{python}: wall clock"] = partial(wall, python)
    print("plugin import (what pytest imports to load the plugin, after its own plugins):")
    show(alternate(runs, rounds))
    for python, (roots, heavy) in last.items():
        print(f"  {python}: heavy modules imported: {heavy or 'none'}; largest (µs cumulative):")
        for cumulative, name in sorted(roots, reverse=True)[:6]:
            print(f"    {cumulative:7d}  {name}")


def timed_run(cmd: list[str], workdir: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def measure_collect(pythons: list[str], env: dict[str, str], workdir: Path, rounds: int) -> None:
    test = workdir / "test_trivial.py"
    test.write_text(TRIVIAL)
    runs: dict[str, Callable[[], float]] = {}
    for python in pythons:
        for label, extra in (("with the plugin", []), ("without it", NO_PLUGIN)):
            cmd = pytest_cmd(python, "--co", *extra, str(test))
            runs[f"{python}: {label}"] = partial(timed_run, cmd, workdir, env)
    print("whole `pytest --co` process, one trivial test:")
    times = alternate(runs, rounds)
    show(times)
    for python in pythons:
        diff = statistics.median(times[f"{python}: with the plugin"]) - statistics.median(
            times[f"{python}: without it"]
        )
        print(f"  {python}: the plugin adds {diff * 1000:.1f} ms (difference of the medians)")


def measure_first(pythons: list[str], env: dict[str, str], workdir: Path, rounds: int) -> None:
    (workdir / "first_pg.py").write_text(FIRST_PG)
    (workdir / "first_plain.py").write_text(FIRST_PLAIN)
    out = workdir / "first.out"

    def first(python: str, args: list[str]) -> float:
        started = time.time()
        subprocess.run(
            pytest_cmd(python, *args),
            cwd=workdir,
            env={**env, "FIRST_OUT": str(out)},
            capture_output=True,
            check=True,
        )
        return float(out.read_text()) - started

    floor = f"{pythons[0]}: plain pytest (floor)"
    runs: dict[str, Callable[[], float]] = {}
    for python in pythons:
        runs[f"{python}: first postgres test"] = partial(first, python, ["first_pg.py"])
    runs[floor] = partial(first, pythons[0], [*NO_PLUGIN, "first_plain.py"])
    print("pytest start → first line of the first test:")
    times = alternate(runs, rounds)
    show(times, "s")
    for python in pythons:
        diff = statistics.median(times[f"{python}: first postgres test"]) - statistics.median(
            times[floor]
        )
        print(f"  {python}: {diff * 1000:.0f} ms after the floor (medians; target < 100 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="append", help="repeatable (default: this Python)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--backend", default="local", help="the postgres backend of the first test (default local)"
    )
    parser.add_argument(
        "--only", choices=["import", "collect", "first"], action="append", help="repeatable"
    )
    opts = parser.parse_args()
    pythons: list[str] = opts.python or [sys.executable]
    parts = opts.only or ["import", "collect", "first"]
    workdir = Path(tempfile.mkdtemp(prefix="pc-bench-startup-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_COMMONS_", "PYTEST_ADDOPTS")) and k != "CI"
    }
    env["PYTEST_COMMONS_POSTGRES_BACKEND"] = opts.backend
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    try:
        # fills the bytecode cache (pytest's rewritten plugin modules included)
        (workdir / "test_warm.py").write_text(TRIVIAL)
        for python in pythons:
            subprocess.run(
                pytest_cmd(python, "test_warm.py"),
                cwd=workdir,
                env=env,
                capture_output=True,
                check=False,
            )
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{opts.rounds} rounds; load average at the start: {load}")
        if "import" in parts:
            measure_import(pythons, env, workdir, opts.rounds)
        if "collect" in parts:
            measure_collect(pythons, env, workdir, opts.rounds)
        if "first" in parts:
            measure_first(pythons, env, workdir, opts.rounds)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average at the end: {load}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
