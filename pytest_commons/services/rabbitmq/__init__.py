"""RabbitMQ: the ``rabbitmq`` fixture (a
:class:`~pytest_commons.services.rabbitmq.client.Rabbitmq`).

A virtual host per xdist worker, emptied (queues, exchanges, bindings) after each test.
Modules: ``spec`` (the server: Debian's rabbitmq-server, a container or an URL; the management
API), ``client`` (what a test receives), ``fixtures``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_commons.core.config import Option, ServiceConfig, ServiceMeta

__all__ = ["META", "RabbitmqConfig"]


@dataclass(frozen=True)
class RabbitmqConfig(ServiceConfig):
    """RabbitMQ's resolved options (frozen; one field per option of ``META.options``)."""

    #: an explicit rabbitmq-server script (``rabbitmq_server_script``)
    server_script: str | None = None
    #: the external server's management API (``rabbitmq_management_url``)
    management_url: str | None = None


META = ServiceMeta(
    name="rabbitmq",
    title="RabbitMQ",
    spec="RabbitmqSpec",
    url_help="AMQP URL (amqp://user:password@host:port/vhost)",
    default_image="rabbitmq:3-management",
    config=RabbitmqConfig,
    options=(
        Option(
            "rabbitmq_server_script",
            "Path of the rabbitmq-server script for the local backend (default: "
            "/usr/lib/rabbitmq/bin/rabbitmq-server, then PATH).",
            kind="path",
        ),
        Option(
            "rabbitmq_management_url",
            "Management API of the external RabbitMQ (default http://<host of the URL>:15672); "
            "the fixtures make and delete their virtual hosts through it.",
        ),
    ),
)
