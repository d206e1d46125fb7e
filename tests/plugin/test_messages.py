"""Messages (issue 17, item 16): a failed start's log outlives the run, a role that may not
create databases gets a clear message, and a timed-out topic creation says so."""

from __future__ import annotations

import os
import re
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import fake_binary

pytestmark = pytest.mark.usefixtures("clean_env", "outer_services_settled")


def test_a_failed_start_keeps_its_server_log_after_the_run(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    bindir = pytester.path / "brokenbin"
    fake_binary(bindir, "redis-server", 'echo "# Fatal: simulated start failure"\nexit 3\n')
    clean_env.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    pytester.makepyfile("def test_redis(redis):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--redis-backend=local")
    result.assert_outcomes(errors=1)
    match = re.search(r"last lines of (\S+):", result.stdout.str())
    assert match, result.stdout.str()[-2000:]
    kept = Path(match.group(1))
    # the run directory is gone; the quoted log is not, and it is the owner's alone
    assert "failed-logs" in kept.parts
    assert "# Fatal: simulated start failure" in kept.read_text()
    assert kept.stat().st_mode & 0o077 == 0
    kept.unlink()


def test_a_role_without_createdb_gets_a_clear_message(
    pytester: pytest.Pytester, postgres_service: Any
) -> None:
    """An external Postgres whose role lacks CREATEDB: the fixtures say so and how to fix
    it, instead of a raw InsufficientPrivilege from the driver."""
    role, password = f"nocreatedb_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = postgres_service.spec.connect(postgres_service.info, autocommit=True)
    try:
        admin.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD '{password}'".encode())
        info = postgres_service.info
        url = f"postgresql://{role}:{password}@{info.host}:{info.port}/{info.dbname}"
        pytester.makepyfile(
            "def test_db(postgres):\n    pass\n\ndef test_tx(postgres_tx):\n    pass\n"
        )
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--postgres-url={url}")
    finally:
        admin.execute(f"DROP ROLE IF EXISTS {role}".encode())
        admin.close()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*postgres (external backend): the role '{role}' on {info.address} may not create "
            "databases (permission denied to create database)*",
            f"*remedy: ALTER ROLE {role} CREATEDB; or give a role that has it in --postgres-url*",
        ]
    )
    result.stdout.no_fnmatch_line("*InsufficientPrivilege*")
    assert password not in result.stdout.str()


def test_a_timed_out_request_has_a_reason() -> None:
    """A future that times out raises a TimeoutError whose message is empty: the topic error
    read "failed: " and nothing more."""
    from pytest_commons.services.kafka.client import _reason

    with pytest.raises(TimeoutError) as caught:
        Future[None]().result(0.01)
    assert str(caught.value) == ""
    assert _reason(caught.value, 10) == "no answer from the broker within 10 s (TimeoutError)"
    assert _reason(RuntimeError("boom"), 10) == "boom"
