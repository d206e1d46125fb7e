"""The faults fixture as a plugin: engine choice and its option, skips and failures with the
reason, teardown (no proxy or fault outlives its test), xdist workers side by side."""

from __future__ import annotations

import pytest

from pytest_commons.faults.fixtures import toxiproxy_binary

NO_BINARY = "--toxiproxy-server=/nonexistent/toxiproxy-server"


def _toxiproxy_or_skip(request: pytest.FixtureRequest) -> None:
    if toxiproxy_binary(request.config) is None:
        pytest.skip("toxiproxy-server is not installed here (scripts/setup.sh installs it)")


def test_unknown_engine_is_a_usage_error(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_x(faults):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--faults-engine=chaos")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--faults-engine: invalid choice: 'chaos'*"])
    clean_env.setenv("PYTEST_COMMONS_FAULTS_ENGINE", "chaos")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # validated at configure time
    result.stderr.fnmatch_lines(
        [
            "*faults_engine='chaos' (from $PYTEST_COMMONS_FAULTS_ENGINE)"
            " is not one of auto, toxiproxy, builtin*"
        ]
    )


def test_auto_without_toxiproxy_is_the_builtin_engine(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        def test_engine(faults, faults_engine):
            assert faults_engine == "builtin"
            assert faults.engine_name == "builtin"
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", NO_BINARY).assert_outcomes(passed=1)


@pytest.mark.parametrize("missing", ["skip", "fail"])
def test_toxiproxy_asked_for_but_missing_skips_or_fails_with_the_reason(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, missing: str
) -> None:
    pytester.makepyfile("def test_x(faults):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-rs",
        "--faults-engine=toxiproxy",
        NO_BINARY,
        f"--services-missing={missing}",
    )
    reason = (
        "*faults: the toxiproxy engine is not available: --toxiproxy-server=/nonexistent/"
        "toxiproxy-server is not an executable file*"
    )
    if missing == "skip":
        result.assert_outcomes(skipped=1)
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*failing because --services-missing=fail*"])
    result.stdout.fnmatch_lines([reason])


TEARDOWN_SUITE = """
import json, socket, pytest, redis

PORTS = []

def test_a_leaves_faults_behind(faults, redis_url):
    proxy = faults.proxy("redis")
    proxy.reset_peer()
    proxy.latency(1000, direction="both")
    PORTS.append(proxy.port)

def test_b_sees_nothing_of_them(faults, redis_url):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", PORTS[0]), timeout=5).close()
    proxy = faults.proxy("redis")
    client = redis.Redis.from_url(proxy.url, socket_timeout=0.5)
    assert client.ping()
    client.close()
    if faults.engine_name == "toxiproxy":
        engine = faults.engine
        listed = engine._request("GET", "/proxies")
        assert list(listed) == [proxy.name]   # test_a's proxy is gone
        assert listed[proxy.name]["toxics"] == []
"""


@pytest.mark.parametrize("engine", ["builtin", "toxiproxy"])
def test_no_proxy_or_fault_outlives_its_test(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    engine: str,
) -> None:
    if engine == "toxiproxy":
        _toxiproxy_or_skip(request)
    pytester.makepyfile(test_teardown=TEARDOWN_SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--backend-order=local", f"--faults-engine={engine}"
    )
    result.assert_outcomes(passed=2)


XDIST_SUITE = """
import pytest, redis

@pytest.mark.parametrize("n", range(6))
def test_own_proxy(faults, redis_url, n):
    proxy = faults.proxy("redis")
    if n % 2:
        proxy.down()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(proxy.url, socket_timeout=2).ping()
    else:
        proxy.latency(5)
        client = redis.Redis.from_url(proxy.url, socket_timeout=5)
        assert client.ping()
        client.close()
"""


def test_xdist_workers_share_one_toxiproxy_and_never_each_others_proxies(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    _toxiproxy_or_skip(request)
    pytest.importorskip("xdist")
    pytester.makepyfile(test_x=XDIST_SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--backend-order=local", "--faults-engine=toxiproxy"
    )
    result.assert_outcomes(passed=6)
    summary = [line for line in result.outlines if line.startswith("toxiproxy ")]
    assert len(summary) == 1, result.outlines  # one server for both workers, in the summary
