"""Leftovers of killed runs on servers other runs share are collected; a live run's are not
(issue 17 item 5). The outer run's PostgreSQL and MySQL servers stand in for external ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("clean_env")

HOLDING = """
import os, time

def test_hold(DB):
    out = os.environ["OUT"]
    with open(out + ".tmp", "w") as fh:
        fh.write(DB.name)
    os.replace(out + ".tmp", out)
    deadline = time.monotonic() + 120
    while not os.path.exists(os.environ["GO"]) and time.monotonic() < deadline:
        time.sleep(0.02)  # held until the outer test lets it go (or kills it)
    conn = DB.connect()
    try:
        cur = conn.cursor()
        cur.execute("select 1")
        assert cur.fetchone() == (1,)
    finally:
        conn.close()
"""


def _databases_on(
    service: str, request: pytest.FixtureRequest
) -> tuple[str, Callable[[], list[str]]]:
    """The outer run's server of ``service`` as a URL, and a function listing its databases."""
    handle = request.getfixturevalue(f"{service}_service")
    if service == "postgres":
        import psycopg

        def names() -> list[str]:
            with psycopg.connect(handle.info.dsn, autocommit=True) as admin:
                return [name for (name,) in admin.execute("select datname from pg_database")]
    else:

        def names() -> list[str]:
            conn = handle.spec.connect(handle.info.with_db(""))
            try:
                with conn.cursor() as cur:
                    cur.execute("SHOW DATABASES")
                    return [name for (name,) in cur.fetchall()]
            finally:
                conn.close()

    return handle.info.url, names


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


@pytest.mark.parametrize("service", ["postgres", "mysql"])
def test_a_killed_runs_databases_are_dropped_by_the_next_run_a_live_runs_kept(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    service: str,
) -> None:
    url, names = _databases_on(service, request)
    clean_env.setenv(f"PYTEST_COMMONS_{service.upper()}_URL", url)
    (pytester.path / "hold").mkdir()
    (pytester.path / "hold" / "test_hold.py").write_text(HOLDING.replace("DB", service))
    pytester.makepyfile(test_next=f"def test_next({service}):\n    pass\n")

    def databases(prefix: str) -> list[str]:
        return [name for name in names() if name.startswith(prefix + "_")]

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
