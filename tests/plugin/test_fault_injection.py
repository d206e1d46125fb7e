"""Fault injection through the handles, in inner runs that own their servers.

Stopping, pausing or restarting a server shared by xdist workers would break the other
workers' tests, so each suite in ``fault_suites/`` runs in a pytest process of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SUITES = Path(__file__).parent / "fault_suites"


@pytest.mark.parametrize(
    ("suite", "count"),
    [("pg_faults.py", 3), ("redis_faults.py", 4), ("mysql_faults.py", 5)],
)
def test_fault_injection_in_an_own_run(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, suite: str, count: int
) -> None:
    pytester.makepyfile(test_faults=(SUITES / suite).read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--backend-order=local")
    result.assert_outcomes(passed=count)
