"""Bad input gets a clear answer (issue 17, items 13 to 16): option values are checked before any
test runs (a usage error, exit code 4, naming the option and where its value came from), an
explicit binary that is not there is an error (not a skip), and a refused external port fails
at once."""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.usefixtures("clean_env", "outer_services_settled")

ONE_REDIS_TEST = """
def test_redis(redis):
    assert redis.ping()
"""
THREE_REDIS_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(3))
def test_redis(redis, n):
    assert redis.ping()
"""


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_a_bad_start_timeout_on_the_command_line_is_a_usage_error(
    pytester: pytest.Pytester, value: str
) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(f"--service-start-timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*service_start_timeout='{value}' (from --service-start-timeout)*seconds*"]
    )


def test_a_bad_start_timeout_in_the_ini_file_names_the_ini_file(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nservice_start_timeout = soon\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*service_start_timeout='soon' (from ini service_start_timeout in tox.ini)*"]
    )


def test_a_bad_value_in_the_environment_names_the_variable(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_SERVICE_START_TIMEOUT", "nan")
    clean_env.setenv("PYTEST_COMMONS_REDIS_BACKEND", "podman")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # the first bad option is reported; the backend name is checked as it is read
    result.stderr.fnmatch_lines(["*(from $PYTEST_COMMONS_*)*"])
    clean_env.delenv("PYTEST_COMMONS_SERVICE_START_TIMEOUT")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*redis_backend='podman' (from $PYTEST_COMMONS_REDIS_BACKEND) is not one of auto*"]
    )


def test_unknown_backend_names_in_the_order_name_their_source(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nbackend_order = local,podman\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*backend_order='local,podman' (from ini backend_order*podman*"])


def test_a_malformed_external_url_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ONE_REDIS_TEST)
    result = pytester.runpytest_subprocess("--redis-url=http://127.0.0.1:1/x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*redis_url='http://127.0.0.1:1/x' (from --redis-url)*scheme*"])


@pytest.mark.parametrize(
    ("flag", "key"),
    [
        ("--postgres-bindir", "postgres_bindir"),
        ("--mysql-server", "mysql_server"),
        ("--kafka-tansu-path", "kafka_tansu_path"),
    ],
)
def test_a_wrong_explicit_binary_path_is_an_error_not_a_skip(
    pytester: pytest.Pytester, flag: str, key: str
) -> None:
    """Outside CI too (clean_env removes $CI): an explicit choice that can't be honoured must
    not turn into skipped tests and exit code 0."""
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(f"{flag}=/nonexistent/bin")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{key}='/nonexistent/bin' (from {flag}) does not exist*"])


def test_a_postgres_bindir_without_postgres_is_an_error(pytester: pytest.Pytester) -> None:
    empty = pytester.mkdir("emptybin")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(f"--postgres-bindir={empty}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*postgres_bindir=*holds no postgres binary*"])


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_external_port_fails_at_once_not_after_the_timeout(
    pytester: pytest.Pytester,
) -> None:
    """With a 600 s start timeout the run would hang for 10 minutes if a refusal were waited
    out; the inner run's own timeout (60 s) makes that a failure of this test."""
    port = _unused_port()
    pytester.makepyfile(THREE_REDIS_TESTS)
    result = pytester.runpytest_subprocess(
        f"--redis-url=redis://127.0.0.1:{port}/0",
        "--service-start-timeout=600",
        timeout=60,
    )
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            f"*redis (external backend): 127.0.0.1:{port} refused the connection*nothing "
            "listens there*",
            "*remedy: start the server, or fix --redis-url*",
        ]
    )
