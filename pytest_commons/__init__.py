"""pytest-commons: pytest fixtures backed by real services.

PostgreSQL, MySQL/MariaDB, Redis, Kafka, AWS and MockServer, served from Docker containers,
local server processes or URLs your CI provides, behind one fixture contract.

The objects the fixtures hand out, for annotations (imported on first use, so that importing
``pytest_commons`` stays cheap): ``Aws``, ``Kafka``, ``PostgresDatabase``, ``MysqlDatabase``,
``AsyncMysqlDatabase``, ``Rabbitmq``, ``ServiceHandle``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.services.aws.client import Aws
    from pytest_commons.services.kafka.client import Kafka
    from pytest_commons.services.mysql.aio import AsyncMysqlDatabase
    from pytest_commons.services.mysql.fixtures import MysqlDatabase
    from pytest_commons.services.postgres.fixtures import PostgresDatabase
    from pytest_commons.services.rabbitmq.client import Rabbitmq

_PUBLIC = {
    "Aws": "pytest_commons.services.aws.client",
    "Kafka": "pytest_commons.services.kafka.client",
    "PostgresDatabase": "pytest_commons.services.postgres.fixtures",
    "MysqlDatabase": "pytest_commons.services.mysql.fixtures",
    "AsyncMysqlDatabase": "pytest_commons.services.mysql.aio",
    "ServiceHandle": "pytest_commons.core.registry",
    "Rabbitmq": "pytest_commons.services.rabbitmq.client",
}

__all__ = [
    "AsyncMysqlDatabase",
    "Aws",
    "Kafka",
    "MysqlDatabase",
    "PostgresDatabase",
    "Rabbitmq",
    "ServiceHandle",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_commons' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
