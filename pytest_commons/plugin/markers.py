"""``@pytest.mark.requires(<service>="<feature>", ...)``: a test that needs a feature the
serving engine does not honour says so instead of passing or failing for the wrong reason.

Each service registers its features once (:func:`register`): per feature, the engines that
lack it, with the reason and the remedy. When the test's service runs on such an engine, the
test is skipped with "<service>: <engine> does not honour <feature> (<why>); <remedy>" — or
fails with that text under ``--services-missing=fail`` (the default in CI), so CI never
passes by skipping what it was meant to test.

    @pytest.mark.requires(mockserver="templates")
    def test_greeting(mockserver): ...

The marker is checked after the test's fixtures are set up (the engine is known only once
the service runs); a feature name nobody registered is a usage error at collection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

MARKER = "requires"
MARKER_HELP = (
    "requires(<service>=<feature or list>, ...): skip (fail under --services-missing=fail) "
    "when the engine serving the service does not honour the feature."
)


@dataclass(frozen=True)
class Feature:
    """A feature of a service and the engines that lack it (engine → why)."""

    service: str
    name: str
    missing: dict[str, str]
    remedy: str = ""


#: service → feature name → Feature
FEATURES: dict[str, dict[str, Feature]] = {}
#: service → function(handle) → engine name ("commons", "java", "tansu", "apache", ...)
ENGINE_OF: dict[str, Callable[[object], str]] = {}


def register(service: str, engine_of: Callable[[object], str], features: list[Feature]) -> None:
    """Register a service's features and how to tell which engine serves it."""
    ENGINE_OF[service] = engine_of
    table = FEATURES.setdefault(service, {})
    for feature in features:
        table[feature.name] = feature


def _wanted(mark: pytest.Mark) -> list[tuple[str, str]]:
    if mark.args:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER} takes keyword arguments only: service='feature'"
        )
    pairs = []
    for service, value in mark.kwargs.items():
        for name in [value] if isinstance(value, str) else list(value):
            pairs.append((service, str(name)))
    return pairs


def validate(item: pytest.Item) -> None:
    """At collection: every named service and feature is known."""
    _ensure_builtin()
    for mark in item.iter_markers(MARKER):
        for service, name in _wanted(mark):
            known = FEATURES.get(service)
            if known is None or name not in known:
                names = ", ".join(sorted(known or {})) or "none registered"
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.{MARKER}({service}={name!r}): unknown "
                    f"feature; {service} features: {names}"
                )


def missing(item: pytest.Item, handle_of: Callable[[str], object]) -> str | None:
    """The reason when the engine serving one of the item's required features lacks it."""
    _ensure_builtin()
    for mark in item.iter_markers(MARKER):
        for service, name in _wanted(mark):
            feature = FEATURES[service][name]
            engine = ENGINE_OF[service](handle_of(service))
            why = feature.missing.get(engine)
            if why is not None:
                remedy = f"; {feature.remedy}" if feature.remedy else ""
                return f"{service}: {name}: {why}{remedy}"
    return None


def _register_builtin() -> None:
    from pytest_commons.services.mockserver.spec import ENGINE_VERSION

    def mockserver_engine(handle: object) -> str:
        version = str(getattr(handle, "version", ""))
        return "commons" if version.startswith(ENGINE_VERSION) else "mockserver"

    java = "the real MockServer does: --mockserver-engine=java (`pytest-commons fetch mockserver`)"
    commons = {
        "templates": "response/forward templates (Velocity, Mustache, JavaScript) are not "
        "implemented",
        "callbacks": "class and object callbacks are not implemented",
        "openapi": "OpenAPI expectations and matchers are not implemented",
        "xml": "XML, XPath and XML-schema body matchers are not implemented",
        "proxy": "proxy mode (forwarding unmatched requests) is not implemented",
        "schema_errors": "documents are validated by the engine's own rules, not MockServer's "
        "JSON schema (messages and some accepted forms differ)",
    }
    register(
        "mockserver",
        mockserver_engine,
        [
            Feature(
                "mockserver", n, {"commons": f"the commons engine does not honour {n}: {why}"}, java
            )
            for n, why in commons.items()
        ],
    )

    from pytest_commons.services.kafka import client as kafka
    from pytest_commons.services.kafka.spec import flavour

    def kafka_engine(handle: object) -> str:
        return flavour(str(getattr(handle, "version", "")))

    register(
        "kafka",
        kafka_engine,
        [
            Feature(
                "kafka",
                name,
                {engine: why for engine, lacking in kafka.MISSING.items() if name in lacking},
                kafka.REMEDY,
            )
            for name, why in kafka.FEATURES.items()
        ],
    )


_BUILTIN_REGISTERED: list[bool] = []


def _ensure_builtin() -> None:
    """Register the built-in services' features the first time a ``requires`` marker is
    checked, not when the plugin loads: the Kafka and MockServer modules they come from import
    urllib and more, which a run without the marker never needs."""
    if not _BUILTIN_REGISTERED:
        _BUILTIN_REGISTERED.append(True)
        _register_builtin()
