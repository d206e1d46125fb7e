"""Per-process plugin state kept in ``config.stash``."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_commons.errors import CommonsError, ServiceUnavailable
from pytest_commons.registry import RecordedFailure, Registry, ServiceHandle

REGISTRY_KEY = pytest.StashKey[Registry]()
MISSING_KEY = pytest.StashKey[str]()


def get_registry(config: pytest.Config) -> Registry:
    try:
        return config.stash[REGISTRY_KEY]
    except KeyError:
        raise pytest.UsageError(
            "pytest-commons is not configured (was the plugin disabled with -p no:commons?)"
        ) from None


def service_handle(request: pytest.FixtureRequest, name: str) -> ServiceHandle[Any]:
    """The handle for ``name``; an unavailable service skips (or fails under
    ``--services-missing=fail``), a broken one fails, both without a traceback."""
    config = request.config
    try:
        return get_registry(config).get(name)
    except (ServiceUnavailable, RecordedFailure) as exc:
        unavailable = isinstance(exc, ServiceUnavailable) or getattr(exc, "unavailable", False)
        message = str(exc)
    except CommonsError as exc:
        unavailable, message = False, str(exc)
    # outside the except blocks: the report shows the message once, without a chained traceback
    if unavailable and config.stash.get(MISSING_KEY, "skip") == "skip":
        pytest.skip(message)
    if unavailable:
        message += "\n  (failing because --services-missing=fail, the default when $CI is set)"
    pytest.fail(message, pytrace=False)


#: services whose engines differ in features a test can ask for with ``requires``
_FEATURE_SERVICES = ("kafka",)


def check_requires(item: pytest.Item) -> None:
    """``@pytest.mark.requires(kafka="transactions")``: skip the test (fail under
    ``--services-missing=fail``) when the engine serving the service lacks a feature; the reason
    names the engine and the remedy. A service that is unavailable is left to its fixture."""
    wanted: dict[str, list[str]] = {}
    for mark in item.iter_markers("requires"):
        if mark.args:
            pytest.fail(
                f"@pytest.mark.requires takes service=feature(s), e.g. requires(kafka="
                f'"transactions"), not {mark.args!r}',
                pytrace=False,
            )
        for service, features in mark.kwargs.items():
            if service not in _FEATURE_SERVICES:
                pytest.fail(
                    f"@pytest.mark.requires({service}=...): no features are known for "
                    f"{service!r} (known: {', '.join(_FEATURE_SERVICES)})",
                    pytrace=False,
                )
            listed = [features] if isinstance(features, str) else list(features)
            wanted.setdefault(service, []).extend(listed)
    if "kafka" not in wanted:
        return
    from pytest_commons.kafka import missing_feature
    from pytest_commons.services.kafka import flavour

    try:
        missing_feature("", wanted["kafka"])
    except ValueError as exc:
        pytest.fail(f"@pytest.mark.requires: {exc}", pytrace=False)
    try:
        handle = get_registry(item.config).get("kafka")
    except CommonsError:
        return  # the service fixture skips or fails with the reasons
    reason = missing_feature(flavour(handle.version), wanted["kafka"], handle.backend)
    if reason is None:
        return
    if item.config.stash.get(MISSING_KEY, "skip") == "skip":
        pytest.skip(reason)
    pytest.fail(
        f"{reason}\n  (failing because --services-missing=fail, the default when $CI is set)",
        pytrace=False,
    )
