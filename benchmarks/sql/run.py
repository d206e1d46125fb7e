"""sql_db benchmark: 100 one-insert ORM tests (insert + ``session.commit()``) per backend, each
rolled back by sql_db, as whole pytest processes; plus the per-test cost of the isolation.

    python benchmarks/sql/run.py [--tests 100] [--repeats 3] [--backends postgres,mysql,sqlite]

The per-test cost is the setup + teardown time pytest reports for each test (sql_db's BEGIN,
Session, ROLLBACK; the first test, which starts the server and creates the schema, is left
out), median over all tests of all repeats. The call phase (the insert and commit) is
reported apart. A plain pytest run of the same number of empty tests is the baseline.
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

CONFTEST = """
import json, os
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table

md = MetaData()
items = Table("items", md, Column("id", Integer, primary_key=True), Column("name", String(40)))

@pytest.fixture(scope="session")
def sql_schema():
    return md

def pytest_runtest_logreport(report):
    with open(os.environ["SQL_BENCH_OUT"], "a") as fh:
        fh.write(json.dumps([report.nodeid, report.when, report.duration]) + "\\n")
"""

TESTS = """
import os, pytest
from conftest import items

@pytest.mark.parametrize("n", range(int(os.environ["SQL_BENCH_TESTS"])))
def test_insert(sql_db, n):
    sql_db.session.execute(items.insert().values(name=f"row {n}"))
    sql_db.session.commit()
"""

PLAIN = """
import os, pytest

@pytest.mark.parametrize("n", range(int(os.environ["SQL_BENCH_TESTS"])))
def test_plain(n):
    pass
"""


def run(workdir: Path, tests: int, backend: str | None) -> tuple[float, list[float], list[float]]:
    out = workdir / "phases.jsonl"
    out.unlink(missing_ok=True)
    env = {**os.environ, "SQL_BENCH_OUT": str(out), "SQL_BENCH_TESTS": str(tests)}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
    if backend:
        args += [f"--db-backends={backend}", "test_sql.py"]
    else:
        args += ["test_plain.py"]
    t = time.perf_counter()
    proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{backend}: inner run failed\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    per: dict[str, dict[str, float]] = {}
    for line in out.read_text().splitlines():
        nodeid, when, duration = json.loads(line)
        per.setdefault(nodeid, {})[when] = duration
    rows = list(per.values())[1:]  # the first test pays for the server and the schema
    isolation = [r.get("setup", 0) + r.get("teardown", 0) for r in rows]
    calls = [r.get("call", 0) for r in rows]
    return wall, isolation, calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="postgres,mysql,sqlite")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sql-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "conftest.py").write_text(CONFTEST)
        (workdir / "test_sql.py").write_text(TESTS)
        (workdir / "test_plain.py").write_text(PLAIN)
        print(f"{opts.tests} tests, {opts.repeats} runs each, medians")
        print(
            f"{'backend':<10} {'whole run':>10} {'per test':>10} {'isolation/test':>15} {'call':>8}"
        )
        for backend in [None, *opts.backends.split(",")]:
            walls, isolation, calls = [], [], []
            for _ in range(opts.repeats):
                wall, iso, call = run(workdir, opts.tests, backend)
                walls.append(wall)
                isolation += iso
                calls += call
            wall = statistics.median(walls)
            iso_ms = statistics.median(isolation) * 1000 if backend else 0.0
            call_ms = statistics.median(calls) * 1000
            print(
                f"{backend or 'plain':<10} {wall:>9.2f}s {wall / opts.tests * 1000:>8.1f}ms "
                f"{iso_ms:>13.2f}ms {call_ms:>6.2f}ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
