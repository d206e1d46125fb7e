"""The services pytest-commons serves, one package each (``pytest_commons/services/<name>/``).

A service package holds everything about its service: the catalogue entry ``META`` in its
``__init__`` (no driver imports), the spec (``spec.py``: connection info, readiness probe, local
and Docker launch), its fixtures, the object a fixture hands out, and its engine where it has
one. :data:`REGISTERED` is the one list the plugin reads; nothing outside a service's package
names the service. Adding one: ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib

from pytest_commons.core.config import ServiceMeta

__all__ = ["REGISTERED", "SERVICES", "ServiceMeta", "service_names"]

#: the registered services, in the order the plugin lists them (``--help``, the summary line)
REGISTERED: tuple[str, ...] = (
    "postgres",
    "redis",
    "mysql",
    "kafka",
    "aws",
    "mockserver",
    "rabbitmq",
)


def _load() -> dict[str, ServiceMeta]:
    catalogue: dict[str, ServiceMeta] = {}
    for name in REGISTERED:
        meta: ServiceMeta = importlib.import_module(f"{__name__}.{name}").META
        if meta.name != name:  # pragma: no cover - a packaging mistake, caught by the tests
            raise RuntimeError(f"services/{name}/__init__.py declares META.name={meta.name!r}")
        catalogue[name] = meta
    return catalogue


SERVICES: dict[str, ServiceMeta] = _load()


def service_names() -> list[str]:
    return list(SERVICES)
