"""Per-process plugin state kept in ``config.stash``."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_commons.core.registry import RecordedFailure, Registry, ServiceHandle
from pytest_commons.errors import CommonsError, ServiceUnavailable

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
