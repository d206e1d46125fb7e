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
    with open("url", "w") as fh:  # with the run's password (local servers have one)
        fh.write(redis_service.info.url)
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


@pytest.mark.usefixtures("own_runtime")
def test_a_run_with_other_options_keeps_its_own_server(pytester: pytest.Pytester) -> None:
    """Other options (another checkout, another branch) mean another kept server: the first
    run's server is not stopped under it."""
    import redis as redis_py

    pytester.makepyfile(REDIS_TEST)
    pytester.runpytest_subprocess("--reuse-services", "--redis-backend=local").assert_outcomes(
        passed=1
    )
    first = int((pytester.path / "port").read_text())
    first_url = (pytester.path / "url").read_text()
    other = pytester.runpytest_subprocess(
        "--reuse-services", "--redis-backend=local", "--redis-image=other:1"
    )
    other.assert_outcomes(passed=1)
    second = int((pytester.path / "port").read_text())
    try:
        assert second != first
        assert redis_py.Redis.from_url(first_url, socket_timeout=5).ping(), "the first is up"
        kept = json.loads(commons_cli("list", "--json").stdout)["kept"]
        assert sorted(k["info"]["port"] for k in kept) == sorted([first, second])
    finally:
        down = commons_cli("down")
    assert down.stdout.count("stopped redis (local)") == 2


HOLDING_REDIS = """
import os, time

def test_hold(redis, redis_db):
    redis.set("mine", "1")
    with open("db1.tmp", "w") as fh:
        fh.write(str(redis_db.db))
    os.replace("db1.tmp", "db1")
    deadline = time.monotonic() + 120
    while not os.path.exists("go") and time.monotonic() < deadline:
        time.sleep(0.02)  # held until the other run is done
    assert redis.get("mine") == b"1", "another run flushed this run's database"
"""

OTHER_REDIS = """
def test_other(redis, redis_db):
    assert redis.dbsize() == 0
    redis.set("theirs", "1")
    with open("db2", "w") as fh:
        fh.write(str(redis_db.db))
"""


@pytest.mark.usefixtures("own_runtime")
def test_concurrent_reuse_runs_do_not_share_a_database(pytester: pytest.Pytester) -> None:
    """Two runs on one kept server at the same time: each claims a database of its own (worker
    N no longer simply takes index N), so neither sees nor flushes the other's keys."""
    import subprocess
    import sys
    import time

    pytester.makepyfile(test_hold=HOLDING_REDIS, test_other=OTHER_REDIS)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--reuse-services"]
    holder = subprocess.Popen(
        [*argv, "--redis-backend=local", "test_hold.py"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not (pytester.path / "db1").exists() and holder.poll() is None:
            assert time.monotonic() < deadline, "the holding run did not start"
            time.sleep(0.02)
        other = pytester.runpytest_subprocess(
            "--reuse-services", "--redis-backend=local", "test_other.py"
        )
        other.assert_outcomes(passed=1)
        (pytester.path / "go").touch()
        output = holder.communicate(timeout=120)[0].decode()
        assert holder.returncode == 0, output
        assert (pytester.path / "db1").read_text() != (pytester.path / "db2").read_text()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
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


def test_doctor_reads_the_ini_file_as_a_test_run_does(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    # filterwarnings = error: reading the configuration must raise no warning either
    ini = "[pytest]\nfilterwarnings = error\nredis_backend = external\nredis_image = nope/redis:0\n"
    pytester.makeini(ini)
    bad = commons_cli("doctor")  # run where the ini is, like pytest
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "asked for (redis_backend=external): redis CANNOT be served here" in bad.stdout
    report = json.loads(commons_cli("doctor", "--json").stdout)
    assert report["asked"]["redis"]["servable"] is False
    assert "nope/redis:0" in report["services"]["redis"]["backends"]["docker"]["reason"]
    # the environment still wins over the ini
    clean_env.setenv("PYTEST_COMMONS_REDIS_BACKEND", "local")
    assert commons_cli("doctor").returncode == 0
    # a bad value is the usage error a test run would stop with
    pytester.makeini("[pytest]\nmysql_backend = nosuch\n")
    bad_value = commons_cli("doctor")
    assert bad_value.returncode == 2
    assert "mysql_backend='nosuch' (from ini mysql_backend in tox.ini)" in bad_value.stderr


def test_cli_version() -> None:
    from pytest_commons import __version__

    result = commons_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"pytest-commons {__version__}"


def test_doctor_exits_non_zero_when_an_asked_for_service_cannot_be_served(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_COMMONS_")}
    env.pop("CI", None)
    assert commons_cli("doctor", "--require", "redis", env=env).returncode == 0
    # the external backend is forced, and no URL is set: nothing can serve redis here
    forced = {**env, "PYTEST_COMMONS_REDIS_BACKEND": "external"}
    bad = commons_cli("doctor", env=forced)
    assert bad.returncode == 1
    assert "asked for (redis_backend=external): redis CANNOT be served here" in bad.stdout
    report = json.loads(commons_cli("doctor", "--json", env=forced).stdout)
    assert report["asked"]["redis"]["servable"] is False
    assert commons_cli("doctor", "--require", "nosuch", env=env).returncode == 2
    in_pytest = pytester.runpytest_subprocess("--services-doctor", "--redis-backend=external")
    assert in_pytest.ret == 1
    in_pytest.stdout.fnmatch_lines(["asked for (redis_backend=external): redis CANNOT*"])


@pytest.mark.usefixtures("own_runtime")
def test_list_prints_urls_to_paste_and_survives_a_closed_pipe(pytester: pytest.Pytester) -> None:
    import subprocess
    import sys

    pytester.makepyfile(REDIS_TEST)
    pytester.runpytest_subprocess("--reuse-services", "--redis-backend=local").assert_outcomes(
        passed=1
    )
    try:
        port = (pytester.path / "port").read_text()
        listed = commons_cli("list")
        assert listed.returncode == 0
        (line,) = listed.stdout.splitlines()
        assert line.startswith("redis       local")
        # a URL to paste, its per-run password masked (the client fixtures carry it)
        assert line.endswith(f"redis://:***@127.0.0.1:{port}/0"), line
        # `pytest-commons list --json | head`: the reader is gone before the output is written
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_commons.cli", "list", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        assert proc.wait(timeout=120) == 0
        assert "BrokenPipeError" not in err
    finally:
        commons_cli("down")


@pytest.mark.usefixtures("own_runtime")
def test_reuse_keeps_one_broker_per_worker_and_down_stops_both(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """``kafka_isolation=broker`` with --reuse-services: each worker keeps its own broker."""
    pytest.importorskip("xdist")
    clean_env.setenv("PYTEST_COMMONS_KAFKA_ENGINE", "tansu")
    pytester.makepyfile("def test_kafka(kafka):\n    kafka.produce(kafka.topic(), ['x'])\n")
    args = ("-n", "2", "--dist", "each", "--kafka-backend=local", "--kafka-isolation=broker")
    first = pytester.runpytest_subprocess("--reuse-services", *args)
    first.assert_outcomes(passed=2)
    kept = json.loads(commons_cli("list", "--json").stdout)["kept"]
    assert sorted(k["service"] for k in kept) == ["kafka@gw0", "kafka@gw1"]
    ports = sorted(str(k["info"]["port"]) for k in kept)
    second = pytester.runpytest_subprocess("--reuse-services", *args)
    second.assert_outcomes(passed=2)
    second.stdout.fnmatch_lines(
        ["kafka@gw0 *reused (kept running)*", "kafka@gw1 *reused (kept running)*"]
    )
    again = json.loads(commons_cli("list", "--json").stdout)["kept"]
    assert sorted(str(k["info"]["port"]) for k in again) == ports
    down = commons_cli("down")
    assert "stopped kafka@gw0 (local)" in down.stdout
    assert "stopped kafka@gw1 (local)" in down.stdout
    assert json.loads(commons_cli("list", "--json").stdout)["kept"] == []
