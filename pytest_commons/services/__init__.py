"""The services pytest-commons knows, as plain metadata (no driver imports).

Each service's behaviour lives in its own module (``pytest_commons.services.<name>``), loaded
only when a test asks for the service.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceMeta:
    """What the plugin core needs to know about a service before it is used."""

    name: str
    title: str
    spec: str  # "module:Class" of the ServiceSpec, imported lazily
    backends: tuple[str, ...]
    url_key: str = "url"
    url_help: str = "URL"
    default_image: str = ""
    marker_help: str = ""


SERVICES: dict[str, ServiceMeta] = {
    meta.name: meta
    for meta in (
        ServiceMeta(
            "postgres",
            "PostgreSQL",
            "pytest_commons.services.postgres:PostgresSpec",
            ("external", "docker", "local"),
            url_help="URL (postgresql://user:password@host:port/dbname)",
            default_image="postgres:16-alpine",
            marker_help="the test uses the PostgreSQL service (added automatically).",
        ),
        ServiceMeta(
            "redis",
            "Redis",
            "pytest_commons.services.redis:RedisSpec",
            ("external", "docker", "local"),
            url_help="URL (redis://[:password@]host:port/db)",
            default_image="redis:7-alpine",
            marker_help="the test uses the Redis service (added automatically).",
        ),
        ServiceMeta(
            "mysql",
            "MySQL/MariaDB",
            "pytest_commons.services.mysql:MysqlSpec",
            ("external", "docker", "local"),
            url_help="URL (mysql://user:password@host:port/dbname)",
            default_image="mariadb:11",
            marker_help="the test uses the MySQL/MariaDB service (added automatically).",
        ),
        ServiceMeta(
            "kafka",
            "Kafka",
            "pytest_commons.services.kafka:KafkaSpec",
            ("external", "docker", "local"),
            url_key="bootstrap_servers",
            url_help="Bootstrap servers (host:port[,host:port])",
            default_image="apache/kafka:3.8.0",
            marker_help="the test uses the Kafka service (added automatically).",
        ),
        ServiceMeta(
            "aws",
            "AWS (LocalStack contract)",
            "pytest_commons.services.aws:AwsSpec",
            ("external", "docker", "local"),
            url_key="endpoint_url",
            url_help="Endpoint URL (http://host:port)",
            default_image="localstack/localstack:3",
            marker_help="the test uses the AWS service (added automatically).",
        ),
        ServiceMeta(
            "mockserver",
            "MockServer",
            "pytest_commons.services.mockserver:MockServerSpec",
            ("external", "docker", "local"),
            url_help="URL (http://host:port)",
            default_image="mockserver/mockserver:5.15.0",
            marker_help="the test uses the MockServer service (added automatically).",
        ),
    )
}


def service_names() -> list[str]:
    return list(SERVICES)
