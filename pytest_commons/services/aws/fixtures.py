"""AWS fixtures: the session endpoint, a per-test ``aws`` view with clients and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_commons.plugin.state import get_registry, service_handle

if TYPE_CHECKING:  # imported by the fixtures: a run that uses no AWS does not pay for them
    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.services.aws.client import Aws, AwsWorker
    from pytest_commons.services.aws.spec import AwsInfo

__all__ = ["aws", "aws_environ", "aws_service"]


@pytest.fixture(scope="session")
def aws_service(request: pytest.FixtureRequest) -> ServiceHandle[AwsInfo]:
    """The run's AWS endpoint (LocalStack contract): a handle with ``.info`` (``.endpoint_url``,
    ``.region``, dummy credentials), ``.backend``, ``.version`` (``moto 5.2.1``,
    ``localstack …``) and fault injection.

    Scope: session, one server shared by all xdist workers. Cost: local moto server ready in
    ≈0.6 s (begun in the background after collection).
    """
    return service_handle(request, "aws")


@pytest.fixture(scope="session")
def _aws_worker(request: pytest.FixtureRequest, aws_service: ServiceHandle[AwsInfo]) -> AwsWorker:
    from pytest_commons.services.aws.client import AwsWorker, worker_account
    from pytest_commons.services.aws.spec import DEFAULT_KEY, AwsSpec, check_endpoint_host

    ctx = get_registry(request.config).ctx
    spec = aws_service.spec
    assert isinstance(spec, AwsSpec)
    info = aws_service.info
    # defence in depth: never hand out clients for a non-loopback host nobody allowed
    check_endpoint_host(info.host, spec.config.allowed_hosts, aws_service.backend)
    account = worker_account(ctx.run_id, ctx.worker_id)
    if info.access_key_id == DEFAULT_KEY:  # dummy credentials: one account per worker
        info = info.with_credentials(account, info.secret_access_key)
    else:  # the URL carried credentials: use them as given
        account = info.access_key_id if info.access_key_id.isdigit() else account
    reset = aws_service.owned and spec.server_extensions(info)
    namespace = f"pc{ctx.run_id.rsplit('-', 1)[-1][:6]}w{ctx.worker_index}"
    return AwsWorker(
        spec=spec, info=info, account_id=account, namespace=namespace.lower(), reset_accounts=reset
    )


@pytest.fixture
def aws(request: pytest.FixtureRequest, _aws_worker: AwsWorker) -> Iterator[Aws]:
    """This test's view of the AWS endpoint: ``.endpoint_url``, ``.region_name``,
    ``.aws_access_key_id``/``.aws_secret_access_key`` (dummy, per worker), ``.client(name)``,
    ``.resource(name)``, ``.aclient(name)`` (aioboto3), ``.env`` for subprocesses, and helpers
    ``.bucket()``, ``.queue()``, ``.table()``, ``.topic()``, ``.receive()``, ``.name()``.

    Everything the test creates is gone before the next test: on the plugin's local moto
    server the worker's own account is wiped (≈2 ms, other workers untouched); elsewhere what
    the fixture's clients created is deleted. Scope: function (clients are cached per worker).
    """
    from pytest_commons.services.aws.client import Aws

    view = Aws(_aws_worker, request.node.nodeid)
    try:
        yield view
    finally:
        from pytest_commons.plugin.report import keep

        view.cleanup(keep=keep(request.node))


@pytest.fixture
def aws_environ(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``aws.env`` applied to ``os.environ`` for this test (so code that builds its own
    boto3 clients reaches the endpoint, in this worker's account); returns the dict.

    Scope: function. Cost: none beyond ``aws``.
    """
    env = aws.env
    for key in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
