"""--reuse-services, the pytest-commons command and --services-doctor."""

from __future__ import annotations

import json

import pytest

from tests.helpers import commons_cli

REDIS_TEST = """
def test_redis(redis, redis_service):
    assert redis.ping()
    with open("port", "w") as fh:
        fh.write(str(redis_service.info.port))
"""


@pytest.fixture
def own_runtime(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    """A private runtime directory: kept services of other tests (or xdist workers) are not ours."""
    runtime = pytester.path / "runtime"
    runtime.mkdir()
    clean_env.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(runtime))


@pytest.mark.usefixtures("own_runtime")
def test_reuse_keeps_and_reattaches_then_down_stops(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(REDIS_TEST)
    first = pytester.runpytest_subprocess("--reuse-services", "--redis-backend=local")
    first.assert_outcomes(passed=1)
    port = (pytester.path / "port").read_text()
    listed = json.loads(commons_cli("list", "--json").stdout)
    assert [k["service"] for k in listed["kept"]] == ["redis"]
    assert str(listed["kept"][0]["info"]["port"]) == port
    second = pytester.runpytest_subprocess("--reuse-services", "--redis-backend=local")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["redis       local*reused (kept running)*"])
    assert (pytester.path / "port").read_text() == port
    down = commons_cli("down")
    assert "stopped redis (local)" in down.stdout
    assert json.loads(commons_cli("list", "--json").stdout)["kept"] == []
    # a run without the flag starts (and stops) its own server
    third = pytester.runpytest_subprocess("--redis-backend=local")
    third.assert_outcomes(passed=1)
    third.stdout.fnmatch_lines(["redis       local*ready in *"])


@pytest.mark.usefixtures("own_runtime")
def test_reuse_restarts_when_configuration_changes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(REDIS_TEST)
    pytester.runpytest_subprocess("--reuse-services", "--redis-backend=local").assert_outcomes(
        passed=1
    )
    # a different setting of the service is a different instance
    result = pytester.runpytest_subprocess(
        "--reuse-services", "--redis-backend=local", "--redis-image=other:1"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["redis       local*ready in *"])
    commons_cli("down")


def test_doctor_reports_every_service_and_backend(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_POSTGRES_BINDIR", "/nonexistent")
    report = json.loads(commons_cli("doctor", "--json").stdout)
    pg = report["services"]["postgres"]["backends"]
    assert pg["local"] == {
        "available": False,
        "reason": "no postgres binary in postgres_bindir='/nonexistent' (from "
        "$PYTEST_COMMONS_POSTGRES_BINDIR)",
        "remedy": "point it at the directory holding postgres and initdb",
    }
    assert pg["external"]["reason"] == "$PYTEST_COMMONS_POSTGRES_URL is not set"
    assert report["services"]["redis"]["backends"]["local"] == {"available": True}
    result = pytester.runpytest_subprocess("--services-doctor")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "postgres: driver ok",
            "  local     no: no postgres binary*",
            "redis: driver ok",
            "  local     available",
        ]
    )
