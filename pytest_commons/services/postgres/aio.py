"""Async twins of the PostgreSQL fixtures: ``postgres_async`` and ``postgres_tx_async``.

psycopg's ``AsyncConnection`` is not bound to an event loop, so it is opened and rolled back
synchronously here and closed with libpq's ``PQfinish``: it works on whatever loop the test
runs (see :mod:`pytest_commons.plugin.aio`). The isolation is the sync fixtures' own (the same
template databases and per-worker rollback databases).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import psycopg

    from pytest_commons.services.postgres.fixtures import PostgresDatabase, _Databases

__all__ = ["async_rollback_connection_class", "postgres_async", "postgres_tx_async"]


def _async_connect(dsn: str, cls: type[Any] | None = None) -> Any:
    """A psycopg ``AsyncConnection`` (or ``cls``) opened synchronously: no event loop needed."""
    import psycopg
    from psycopg import pq

    pgconn = pq.PGconn.connect(dsn.encode())
    if pgconn.status != pq.ConnStatus.OK:
        message = pgconn.get_error_message()
        pgconn.finish()
        raise psycopg.OperationalError(f"connection failed: {message}")
    pgconn.nonblocking = 1
    return (cls or psycopg.AsyncConnection)(pgconn)


def _finish(conn: Any) -> None:
    """Close an ``AsyncConnection`` without a loop (libpq's PQfinish: no round trip)."""
    if not conn.closed:
        conn.pgconn.finish()


def _exec(conn: Any, sql: str) -> None:
    """Run one command synchronously on an ``AsyncConnection`` that is idle."""
    import psycopg
    from psycopg import pq

    result = conn.pgconn.exec_(sql.encode())
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.OperationalError(
            f"{sql}: {conn.pgconn.get_error_message() or result.status.name}"
        )


@pytest.fixture
def postgres_async(postgres: PostgresDatabase) -> Iterator[psycopg.AsyncConnection[Any]]:
    """A psycopg 3 ``AsyncConnection`` to this test's own fresh database (``postgres``'s: ask
    for both to get ``.name``/``.url`` too). Autocommit off, as psycopg's default.

    Works on whatever event loop the test runs (pytest-asyncio in any mode and loop scope,
    anyio): the connection is not bound to a loop. Scope: function. Cost: the ``postgres``
    fixture's (a database cloned ahead of time) plus one connect (≈4 ms); closed after the test.
    """
    conn = _async_connect(postgres.dsn)
    yield conn
    _finish(conn)


_ROLLBACK_CLASS: type[Any] | None = None


def async_rollback_connection_class() -> type[psycopg.AsyncConnection[Any]]:
    """An ``AsyncConnection`` whose ``commit()``/``rollback()`` stay inside an outer
    transaction (the async twin of the sync fixtures' ``rollback_connection_class``)."""
    global _ROLLBACK_CLASS
    if _ROLLBACK_CLASS is None:
        import psycopg

        from pytest_commons.services.postgres.fixtures import OUTER_SAVEPOINT

        class AsyncRollbackConnection(psycopg.AsyncConnection[Any]):
            """``commit()`` releases and renews a savepoint; the test's end rolls back all."""

            _commons_outer = False

            async def commit(self) -> None:
                if not self._commons_outer:
                    return await super().commit()
                await self.execute(f"RELEASE SAVEPOINT {OUTER_SAVEPOINT}")
                await self.execute(f"SAVEPOINT {OUTER_SAVEPOINT}")

            async def rollback(self) -> None:
                if not self._commons_outer:
                    return await super().rollback()
                await self.execute(f"ROLLBACK TO SAVEPOINT {OUTER_SAVEPOINT}")

            def begin_outer(self) -> None:
                """Synchronously: a transaction and the savepoint app code commits to."""
                from psycopg import pq

                self._commons_outer = False
                if self.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                    _exec(self, "ROLLBACK")
                _exec(self, f"BEGIN; SAVEPOINT {OUTER_SAVEPOINT}")  # one round trip
                self._commons_outer = True

            def end_outer(self) -> None:
                self._commons_outer = False
                _exec(self, "ROLLBACK")

        _ROLLBACK_CLASS = AsyncRollbackConnection
    return _ROLLBACK_CLASS


class _AsyncTx:
    """This worker's rollback ``AsyncConnection`` per template (beside the sync ones)."""

    def __init__(self) -> None:
        self.conns: dict[str, Any] = {}

    def close(self) -> None:
        for conn in self.conns.values():
            with contextlib.suppress(Exception):
                _finish(conn)


@pytest.fixture(scope="session")
def _postgres_tx_async_conns() -> Iterator[_AsyncTx]:
    conns = _AsyncTx()
    yield conns
    conns.close()


@pytest.fixture
def postgres_tx_async(
    _postgres_databases: _Databases, postgres_template: str, _postgres_tx_async_conns: _AsyncTx
) -> Iterator[psycopg.AsyncConnection[Any]]:
    """A psycopg 3 ``AsyncConnection`` inside a transaction that is rolled back after the test.

    The async twin of ``postgres_tx``: ``await conn.commit()`` in application code releases a
    savepoint instead, so nothing written survives the test. The database is cloned from
    :func:`postgres_template` once per worker (and schema) and the connection is kept across
    tests — it is not bound to an event loop, so every test may run on a loop of its own.
    Scope: function. Cost: ≈0.5 ms per test (the BEGIN/ROLLBACK, sent synchronously).
    """
    dbs, conns = _postgres_databases, _postgres_tx_async_conns.conns
    conn: Any = conns.get(postgres_template)
    if conn is None or conn.closed or conn.broken:
        name = dbs.name(f"txa{len(conns) + 1}")
        dbs.create(name, template=postgres_template)
        conn = _async_connect(dbs.service.info.with_db(name).dsn, async_rollback_connection_class())
        conns[postgres_template] = conn
    conn.begin_outer()
    yield conn
    if not conn.closed:
        conn.end_outer()
