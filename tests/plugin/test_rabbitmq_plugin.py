"""The rabbitmq plugin in inner runs: the external backend (virtual hosts made, stamped,
deleted, dead runs' collected), a user who may not make virtual hosts, a malformed URL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.core.run import owner_stamp
from pytest_commons.services.rabbitmq.spec import RabbitmqInfo

INNER = """
def test_uses_its_own_vhost(rabbitmq):
    queue = rabbitmq.queue()
    rabbitmq.publish(queue, b"x")
    assert rabbitmq.consume(queue) == [b"x"]
    assert rabbitmq.vhost.startswith("pc_")
"""


@pytest.fixture
def api(rabbitmq_service: ServiceHandle[RabbitmqInfo]) -> Iterator[httpx.Client]:
    info = rabbitmq_service.info
    with httpx.Client(
        base_url=f"{info.management_url}/api", auth=(info.user, info.password), timeout=10
    ) as client:
        yield client


def _external(clean_env: pytest.MonkeyPatch, info: RabbitmqInfo) -> None:
    clean_env.setenv("PYTEST_COMMONS_RABBITMQ_URL", info.url)
    clean_env.setenv("PYTEST_COMMONS_RABBITMQ_MANAGEMENT_URL", info.management_url)


def _vhosts(api: httpx.Client) -> set[str]:
    return {v["name"] for v in api.get("/vhosts").json()}


def test_external_backend_makes_and_deletes_its_vhosts_and_collects_dead_runs(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    rabbitmq_service: ServiceHandle[RabbitmqInfo],
    api: httpx.Client,
) -> None:
    gone = subprocess.run(["true"], check=True)  # a pid that no longer runs
    assert gone.returncode == 0
    dead = owner_stamp("pc_1_dead_gw0") | {"pid": 2**22 + 7, "start": "1"}
    live = owner_stamp("pc_1_live_gw0")  # this process: alive
    made = {
        # dead runs' vhosts named before and after this run's own (pc_<digits>_…)
        "pc_0_dead_gw0": dead,
        "pc_z_dead_gw0": dead,
        "pc_1_live_gw0": live,
        "team_dead": dead,  # not named by the plugin: never touched, whatever it says
    }
    for name, stamp in made.items():
        created = api.put(f"/vhosts/{name}", json={"description": json.dumps(stamp)})
        assert created.status_code in (201, 204), created.text
    before = _vhosts(api)
    try:
        _external(clean_env, rabbitmq_service.info)
        pytester.makepyfile(INNER)
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-p", "no:asyncio", "-n", "2", "--rabbitmq-backend=external"
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["rabbitmq*external*"])
        after = _vhosts(api)
        assert not {"pc_0_dead_gw0", "pc_z_dead_gw0"} & after  # a killed run's leftovers
        assert {"pc_1_live_gw0", "team_dead"} <= after  # a live run's, and others', are kept
        assert after - before == set(), "the run's own vhosts are deleted at its end"
    finally:
        for name in made:
            api.delete(f"/vhosts/{name}")


def test_a_user_who_may_not_make_vhosts_gets_the_remedy(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    rabbitmq_service: ServiceHandle[RabbitmqInfo],
    api: httpx.Client,
) -> None:
    from dataclasses import replace

    user = {"password": "limited-pw", "tags": "management"}
    assert api.put("/users/pc_limited", json=user).status_code in (201, 204)
    try:
        limited = replace(rabbitmq_service.info, user="pc_limited", password="limited-pw")
        _external(clean_env, limited)
        pytester.makepyfile(INNER)
        # no permission on the URL's vhost: the handshake says so, at once
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*rabbitmq (external backend): the user 'pc_limited' may not open the virtual "
                "host '/'*"
            ]
        )
        # allowed in '/', but not to make virtual hosts (no administrator tag)
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        assert api.put("/permissions/%2F/pc_limited", json=everything).status_code in (201, 204)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*rabbitmq (external backend): creating the virtual host 'pc_*': the "
                "management API answered 401*",
                "*remedy: give the user 'pc_limited' the administrator tag*",
            ]
        )
    finally:
        api.delete("/users/pc_limited")


def test_a_malformed_url_is_a_usage_error_naming_the_setting(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_RABBITMQ_URL", "http://127.0.0.1:5672/")
    pytester.makepyfile(INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "$PYTEST_COMMONS_RABBITMQ_URL" in err
    assert "scheme must be amqp://" in err
