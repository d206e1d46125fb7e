"""The AWS service in inner pytest runs: marker, endpoint checks, missing moto, xdist, external."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_commons.core.host import free_port
from pytest_commons.errors import ConfigError
from pytest_commons.plugin.settings import Settings
from pytest_commons.services.aws.spec import AwsSpec

AWS_TEST = """
def test_aws(aws):
    assert aws.client("s3").list_buckets()["Buckets"] == []
"""

# six tests with fixed names, spread over two workers: each must find its account empty
XDIST_TESTS = """
import json, os, pytest

@pytest.mark.parametrize("n", range(6))
def test_fixed_names(aws, n, tmp_path_factory):
    sqs, ddb = aws.client("sqs"), aws.client("dynamodb")
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert ddb.list_tables()["TableNames"] == []
    sqs.create_queue(QueueName="fixed-queue")
    aws.table("fixed-table")
    aws.client("s3").create_bucket(Bucket=aws.name("b"))
    out = os.environ["AWS_RECORD_DIR"]
    with open(os.path.join(out, f"{n}.json"), "w") as fh:
        json.dump({"endpoint": aws.endpoint_url, "account": aws.account_id,
                   "worker": os.environ.get("PYTEST_XDIST_WORKER", "-"),
                   "isolation": aws.isolation}, fh)
"""


def _port_closed(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) != 0


def test_marker_is_added_and_registered(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(AWS_TEST + "\ndef test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-m", "not aws", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_plain*"])
    result.stdout.no_fnmatch_line("*test_aws*")
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.aws: the test uses the AWS service*"])


def test_local_run_reports_moto_and_leaves_nothing_running(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        AWS_TEST
        + """
def test_endpoint(aws, aws_service):
    with open("endpoint.txt", "w") as fh:
        fh.write(aws.endpoint_url)
    assert aws_service.backend == "local"
    assert aws.isolation == "account-reset"
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--aws-backend=local")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*commons services*", "aws*local*moto 5.*ready in *127.0.0.1:*"])
    endpoint = (pytester.path / "endpoint.txt").read_text()
    assert _port_closed(endpoint)


def test_non_loopback_endpoint_is_refused(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(AWS_TEST)
    clean_env.setenv("PYTEST_COMMONS_AWS_ENDPOINT_URL", "https://s3.eu-west-1.amazonaws.com")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*aws (external backend): the endpoint host 's3.eu-west-1.amazonaws.com' is not "
            "loopback and not listed in aws_allowed_hosts*",
            "*remedy: *PYTEST_COMMONS_AWS_ALLOWED_HOSTS (--aws-allowed-hosts, ini "
            "aws_allowed_hosts)*",
        ]
    )


def test_endpoint_host_rules() -> None:
    def spec(allowed: str | None = None) -> AwsSpec:
        values = {"aws_allowed_hosts": allowed, "aws_region": "eu-central-1"}
        return AwsSpec(Settings(values.get))

    for url in (
        "http://127.0.0.1:4566",
        "http://127.9.9.9:1",
        "http://[::1]:4566",
        "http://localhost:4566",
        "http://s3.localhost:4566",
    ):
        info = spec().parse_url(url)
        assert info.region == "eu-central-1"
    assert spec().parse_url("http://localhost").port == 4566
    with pytest.raises(ConfigError, match="aws_allowed_hosts"):
        spec().parse_url("http://10.0.0.5:4566")
    with pytest.raises(ConfigError, match="not loopback"):
        spec("other").parse_url("http://localstack:4566")
    assert spec("localstack, other").parse_url("http://LocalStack:4566").host == "localstack"
    info = spec().parse_url("http://000000000000:sekret@127.0.0.1:4566")
    assert info.access_key_id == "000000000000"
    assert "sekret" not in repr(info)
    for bad in ("ftp://127.0.0.1", "127.0.0.1:4566", "http://127.0.0.1:99999", "http://"):
        with pytest.raises(ValueError):
            spec().parse_url(bad)


def test_malformed_and_unreachable_endpoints(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(AWS_TEST)
    clean_env.setenv("PYTEST_COMMONS_AWS_ENDPOINT_URL", "ftp://127.0.0.1:4566")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*AWS_ENDPOINT_URL) is malformed: scheme must be http:// or https://*"]
    )
    port = free_port()  # nothing listens there
    clean_env.setenv("PYTEST_COMMONS_AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    # a start timeout the inner run would never outlive: it must fail on the refusal, at once
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--service-start-timeout=3600", timeout=120
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*aws (external backend): *127.0.0.1:{port} refused the connection*",
            "*remedy: start the server, or fix $PYTEST_COMMONS_AWS_ENDPOINT_URL*",
        ]
    )


def test_missing_moto_skips_with_install_hint(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    # a Python without moto: block the import the way Python itself does (sys.modules None)
    pytester.makeconftest("import sys\nsys.modules['moto'] = None\n")
    pytester.makepyfile(AWS_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--aws-backend=local", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*aws: no backend available*",
            "*local: moto's server is not installed (missing: moto) "
            '(pip install "pytest-commons?aws?", or set PYTEST_COMMONS_AWS_ENDPOINT_URL*',
        ]
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--aws-backend=local", "--services-missing=fail"
    )
    result.assert_outcomes(errors=1)


def test_xdist_workers_share_one_server_in_separate_accounts(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    records = pytester.mkdir("records")
    clean_env.setenv("AWS_RECORD_DIR", str(records))
    pytester.makepyfile(XDIST_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--aws-backend=local"
    )
    result.assert_outcomes(passed=6)
    data = [json.loads(p.read_text()) for p in records.iterdir()]
    assert len(data) == 6
    assert len({d["endpoint"] for d in data}) == 1  # one server for the run
    workers = {d["worker"] for d in data}
    assert workers == {"gw0", "gw1"}
    accounts = {d["worker"]: d["account"] for d in data}
    assert len(set(accounts.values())) == 2  # one account per worker
    assert {d["isolation"] for d in data} == {"account-reset"}
    assert _port_closed(data[0]["endpoint"])


@pytest.fixture
def plain_moto_server(tmp_path: Path) -> Iterator[str]:
    """An external endpoint: moto's stock server, started (and stopped) by this test."""
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"moto server did not start: {(tmp_path / 'moto.log').read_text()}")
        time.sleep(0.02)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_external_endpoint_deletes_only_what_tests_created(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, plain_moto_server: str
) -> None:
    import boto3

    outer = boto3.client(
        "s3",
        endpoint_url=plain_moto_server,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    outer.create_bucket(Bucket="someone-elses-bucket")
    pytester.makepyfile(
        """
import pytest

@pytest.mark.parametrize("n", [1, 2])
def test_fixed_names(aws, aws_service, n):
    assert aws_service.backend == "external"
    assert aws.isolation == "tracked-deletion"
    s3 = aws.client("s3")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == ["someone-elses-bucket"]  # stock moto: one account for every key
    s3.create_bucket(Bucket="app-bucket")
    s3.put_object(Bucket="app-bucket", Key="k", Body=b"v")
    aws.queue()
    aws.table("app-table")
"""
    )
    clean_env.setenv("PYTEST_COMMONS_AWS_ENDPOINT_URL", plain_moto_server)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["aws*external*moto*127.0.0.1:*"])
    assert [b["Name"] for b in outer.list_buckets()["Buckets"]] == ["someone-elses-bucket"]
    sqs = boto3.client(
        "sqs",
        endpoint_url=plain_moto_server,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    assert sqs.list_queues().get("QueueUrls", []) == []
