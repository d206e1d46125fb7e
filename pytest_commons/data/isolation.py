"""``isolated_example``: one SAVEPOINT per generated example, rolled back afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pytest_commons.data._sql import family

# postgres_tx's connection turns commit() into "RELEASE + SAVEPOINT pytest_commons_outer" and
# rollback() into "ROLLBACK TO pytest_commons_outer" (the most recent savepoint of that name).
# Inside an example we put our own savepoint first and a fresh "pytest_commons_outer" on top:
# the example's commits then land in our savepoint, which is rolled back at the end.
_EXAMPLE = "pytest_commons_example"
_SAVEPOINT = "pytest_commons_outer"


@contextlib.contextmanager
def isolated_example(conn_or_session: Any) -> Iterator[Any]:
    """Run one example inside a SAVEPOINT that is rolled back when the block ends.

    For ``@given`` tests on a real database: every example starts from the same state, and
    undoing an example costs a ROLLBACK TO SAVEPOINT (≈0.2 ms) instead of a new database.

    Accepts a psycopg 3 connection (``postgres_tx``; its ``commit()`` inside the block stays
    inside the example), a PyMySQL/sqlite3 connection, or a SQLAlchemy Session/Connection (the
    example should ``flush()``; with a session bound with
    ``join_transaction_mode="create_savepoint"`` its ``commit()`` is undone too). Yields the
    connection or session.
    """
    module = family(conn_or_session)
    if module.startswith("sqlalchemy"):
        with _sqlalchemy(conn_or_session) as value:
            yield value
        return
    conn = conn_or_session
    started = False
    if module.startswith("psycopg"):
        if conn.autocommit:
            conn.execute("BEGIN")
            started = True
        conn.execute(f"SAVEPOINT {_EXAMPLE}")
        conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            yield conn
        finally:
            if not conn.closed:
                conn.execute(f"ROLLBACK TO SAVEPOINT {_EXAMPLE}")
                conn.execute(f"RELEASE SAVEPOINT {_EXAMPLE}")
                if started:
                    conn.execute("ROLLBACK")
        return
    cur = conn.cursor()
    try:
        if module.startswith("sqlite3") and not conn.in_transaction:
            cur.execute("BEGIN")
        cur.execute(f"SAVEPOINT {_EXAMPLE}")
        try:
            yield conn
        finally:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_EXAMPLE}")
            cur.execute(f"RELEASE SAVEPOINT {_EXAMPLE}")
    finally:
        cur.close()


@contextlib.contextmanager
def _sqlalchemy(target: Any) -> Iterator[Any]:
    nested = target.begin_nested()
    try:
        yield target
    finally:
        if nested.is_active:
            nested.rollback()
        if hasattr(target, "expire_all"):
            target.expire_all()


@contextlib.asynccontextmanager
async def aisolated_example(session: Any) -> Any:
    """:func:`isolated_example` for a SQLAlchemy ``AsyncSession`` or ``AsyncConnection``."""
    nested = await session.begin_nested()
    try:
        yield session
    finally:
        if nested.is_active:
            await nested.rollback()
        if hasattr(session, "expire_all"):
            session.expire_all()
