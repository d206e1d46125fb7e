"""FastAPI: point an app's dependencies at this test's services for the length of a block.

The live server runs the app in the test's process, so an override set here is what the next
request sees::

    @pytest.fixture
    def wired(app_server, postgres, redis_url):
        with override(app, {get_database_url: lambda: postgres.url,
                            get_redis_url: lambda: redis_url}):
            yield app_server

Each value is a dependency callable, as in ``app.dependency_overrides`` (FastAPI resolves its
own parameters, so it may itself depend on other dependencies). The app's previous overrides
come back at the end of the block, also when the test fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["override"]


@contextlib.contextmanager
def override(app: Any, overrides: Mapping[Callable[..., Any], Callable[..., Any]]) -> Iterator[Any]:
    """Set ``app.dependency_overrides[dep] = provider`` for each pair, restore them after."""
    table: dict[Callable[..., Any], Callable[..., Any]] = app.dependency_overrides
    saved = {dep: table[dep] for dep in overrides if dep in table}
    table.update(overrides)
    try:
        yield app
    finally:
        for dep in overrides:
            if dep in saved:
                table[dep] = saved[dep]
            else:
                table.pop(dep, None)
