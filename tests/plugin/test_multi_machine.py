"""The suite split across CI machines with pytest-split, each machine with its own services
(docs/ci.md, "More than one machine"): the durations file is written by one run, then each
"machine" (a process with a runtime directory of its own) runs its group at the same time as
the other; together they run every test exactly once, and each starts and stops its own
servers. The other layout (machines sharing one set of external servers) is proved in
tests/reliability/test_shared_external_servers.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("pytest_split")
pytest.importorskip("psycopg")
pytest.importorskip("redis")

pytestmark = pytest.mark.usefixtures("clean_env")

SUITE = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_postgres(postgres, n):
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE t (n int)")

@pytest.mark.parametrize("n", range(4))
def test_redis(redis, n):
    assert redis.dbsize() == 0
    redis.set("k", n)
"""

ARGS = [
    "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:asyncio", "-v",
    "--backend-order=local",
]  # fmt: skip


def test_split_across_two_machines_each_with_its_own_services(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    durations = pytester.path / ".test_durations"
    first = pytester.runpytest_subprocess(
        *ARGS, "--store-durations", f"--durations-path={durations}"
    )
    first.assert_outcomes(passed=8)
    assert durations.exists()
    machines = []
    homes = [Path(tempfile.mkdtemp(prefix=f"pc-machine{group}-")) for group in (1, 2)]
    for group, home in zip((1, 2), homes, strict=True):
        home.chmod(0o711)  # the servers' own user enters it
        env = dict(os.environ, PYTEST_COMMONS_RUNTIME_DIR=str(home))
        machines.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    *ARGS,
                    "--splits",
                    "2",
                    "--group",
                    str(group),
                    f"--durations-path={durations}",
                    f"--basetemp={home / 'tmp'}",
                ],
                cwd=pytester.path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    ran: list[str] = []
    outputs = [proc.communicate(timeout=300)[0] for proc in machines]
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)
    for proc, out in zip(machines, outputs, strict=True):
        assert proc.returncode == 0, out[-3000:]
        mine = re.findall(r"^(test_suite\.py::\S+) PASSED", out, re.MULTILINE)
        assert mine, out[-3000:]
        assert "ready in" in out  # this machine started its own servers
        ran += mine
    assert sorted(ran) == sorted(set(ran))  # no test twice
    assert len(ran) == 8  # and every test once
