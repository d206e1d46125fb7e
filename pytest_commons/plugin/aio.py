"""Loop bookkeeping shared by the async fixtures (``redis_async``, ``mysql_async``, …).

The async fixtures are plain (sync) fixtures, so pytest-asyncio (strict or auto, any loop scope)
and anyio's pytest plugin both accept them without a decorator of their own, and no fixture is
tied to a loop the test does not run on:

- psycopg's ``AsyncConnection`` is not bound to an event loop (it waits on the running loop of
  each call), so ``postgres_async`` opens and rolls it back synchronously and closes it with
  libpq's ``PQfinish``: it works on whatever loop the test runs
  (:mod:`pytest_commons.services.postgres.aio`).
- aiomysql's connections (and redis-py's over TLS; ``redis_async``'s others belong to no loop,
  :mod:`pytest_commons.services.redis.aio`) belong to the loop they were opened on. They open
  lazily, in the test's loop, and are closed *in that loop* by :class:`LoopResources`: when the
  loop is still open at teardown (module/session loop scopes), by running their close there;
  when the loop's runner closes first (function loop scope), by the runner itself, which closes
  every live async generator (``loop.shutdown_asyncgens()``) before it closes the loop — each
  connection holds one whose ``finally`` closes it. No "attached to a different loop", no
  unclosed transports.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import asyncio

__all__ = ["LoopResources"]


class LoopResources:
    """Async resources to close on the loop each was opened on (see the module's docstring)."""

    def __init__(self) -> None:
        self._held: list[tuple[asyncio.AbstractEventLoop, AsyncIterator[None]]] = []

    async def bind(self, aclose: Callable[[], Awaitable[object]]) -> None:
        """Close ``aclose()`` when this object closes, or when the running loop shuts down."""
        import asyncio

        async def guard() -> AsyncIterator[None]:
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await aclose()

        held = guard()
        await held.__anext__()  # now the running loop tracks it (shutdown_asyncgens)
        self._held.append((asyncio.get_running_loop(), held))

    def close(self) -> None:
        import asyncio

        held, self._held = self._held, []
        for loop, gen in reversed(held):
            if loop.is_closed():
                continue  # its runner closed it with the loop's other async generators
            close = gen.aclose()  # type: ignore[attr-defined]
            if loop.is_running():  # a loop in another thread (the live server's, say)
                asyncio.run_coroutine_threadsafe(close, loop).result(timeout=30)
            else:
                loop.run_until_complete(close)


@pytest.fixture
def _commons_loop_resources() -> Iterator[LoopResources]:
    resources = LoopResources()
    yield resources
    resources.close()


@pytest.fixture(scope="session")
def _commons_session_loop_resources() -> Iterator[LoopResources]:
    """Like ``_commons_loop_resources``, for what outlives a test: closed when its loop shuts
    down (function loop scope: with the test) or at the end of the session."""
    resources = LoopResources()
    yield resources
    resources.close()
