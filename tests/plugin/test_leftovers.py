"""Leftovers of killed runs on servers other runs share are collected; a live run's are not
(issue 17 item 5). The outer run's PostgreSQL server stands in for an external one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_commons.registry import ServiceHandle
from pytest_commons.services.postgres import PostgresInfo

pytestmark = pytest.mark.usefixtures("clean_env")

HOLDING = """
import os, time

def test_hold(postgres):
    out = os.environ["OUT"]
    with open(out + ".tmp", "w") as fh:
        fh.write(postgres.name)
    os.replace(out + ".tmp", out)
    deadline = time.monotonic() + 120
    while not os.path.exists(os.environ["GO"]) and time.monotonic() < deadline:
        time.sleep(0.02)  # held until the outer test lets it go (or kills it)
    with postgres.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)
"""


def _holding_run(path: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """Starts an inner run that holds its database; returns it and its databases' prefix."""
    out, go = path / f"{name}.out", path / f"{name}.go"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "hold"],
        cwd=path,
        env={**os.environ, "OUT": str(out), "GO": str(go)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not out.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the holding run did not start:\n" + proc.communicate()[0].decode())
        time.sleep(0.02)
    return proc, out.read_text().rsplit("_", 1)[0]


def test_a_killed_runs_databases_are_dropped_by_the_next_run_a_live_runs_kept(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    postgres_service: ServiceHandle[PostgresInfo],
) -> None:
    import psycopg

    clean_env.setenv("PYTEST_COMMONS_POSTGRES_URL", postgres_service.info.url)
    (pytester.path / "hold").mkdir()
    (pytester.path / "hold" / "test_hold.py").write_text(HOLDING)
    pytester.makepyfile(test_next="def test_next(postgres):\n    pass\n")

    def databases(prefix: str) -> list[str]:
        with psycopg.connect(postgres_service.info.dsn, autocommit=True) as admin:
            rows = admin.execute("select datname from pg_database").fetchall()
        return [name for (name,) in rows if name.startswith(prefix + "_")]

    killed, killed_prefix = _holding_run(pytester.path, "killed")
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    assert databases(killed_prefix), "the killed run left its databases"
    # a run that holds on while another one starts, and the next run after that
    live, live_prefix = _holding_run(pytester.path, "live")
    try:
        pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_next.py").assert_outcomes(
            passed=1
        )
        assert databases(killed_prefix) == [], "the killed run's databases were dropped"
        assert databases(live_prefix), "a live run's databases are never touched"
    finally:
        (pytester.path / "live.go").touch()
        output = live.communicate(timeout=120)[0].decode()
    assert live.returncode == 0, output
