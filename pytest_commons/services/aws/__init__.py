"""AWS (LocalStack contract): the ``aws`` fixture (an
:class:`~pytest_commons.services.aws.client.Aws`).

Buckets, queues and tables a test creates are deleted after it. Modules: ``spec`` (the server:
moto, LocalStack or an endpoint), ``client``, ``fixtures``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_commons.core.config import Option, ServiceConfig, ServiceMeta

__all__ = ["META", "AwsConfig"]


@dataclass(frozen=True)
class AwsConfig(ServiceConfig):
    """AWS's resolved options (frozen; one field per option of ``META.options``)."""

    #: comma separated non-loopback hosts the endpoint may point at (``aws_allowed_hosts``)
    allowed_hosts: str | None = None
    #: the region the aws fixture uses (``aws_region``)
    region: str = "us-east-1"


META = ServiceMeta(
    name="aws",
    title="AWS (LocalStack contract)",
    spec="AwsSpec",
    report="report:describe",
    url_key="endpoint_url",
    url_help="Endpoint URL (http://host:port)",
    default_image="localstack/localstack:3",
    marker_help="the test uses the AWS service (added automatically).",
    config=AwsConfig,
    options=(
        Option(
            "aws_allowed_hosts",
            "Comma separated non-loopback hosts the AWS endpoint may point at (default: "
            "loopback only, so a run can never touch a real AWS account).",
        ),
        Option(
            "aws_region",
            "AWS region the aws fixture uses (default us-east-1).",
            default="us-east-1",
        ),
    ),
)
