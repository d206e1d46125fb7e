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
    example may ``commit()`` when the session is joined to a connection with
    ``join_transaction_mode="create_savepoint"``, as ``sql_db.session`` is: what the session
    holds is committed into the test's transaction first, and the example's commits are undone;
    other sessions should ``flush()``). Yields the connection or session.
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


def _joined_connection(session: Any) -> Any:
    """The Connection a Session is joined to with ``join_transaction_mode="create_savepoint"``
    (``sql_db.session``), else None. Such a session's ``commit()`` releases its own savepoint,
    and with it any savepoint begun on the session inside it: the example's savepoint has to
    sit below the session's, on the connection."""
    sync = getattr(session, "sync_session", session)
    if getattr(sync, "join_transaction_mode", None) != "create_savepoint":
        return None
    bind = getattr(session, "bind", None)
    return bind if hasattr(bind, "begin_nested") and hasattr(bind, "get_transaction") else None


@contextlib.contextmanager
def _sqlalchemy(target: Any) -> Iterator[Any]:
    joined = _joined_connection(target)
    if joined is not None:
        target.commit()  # what the session holds before the example is the baseline
        outer = joined.begin_nested()
        try:
            yield target
        finally:
            target.rollback()  # a savepoint the example left open in the session
            if outer.is_active:
                outer.rollback()
            target.expire_all()
        return
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
    joined = _joined_connection(session)
    if joined is not None:
        await session.commit()
        outer = await joined.begin_nested()
        try:
            yield session
        finally:
            await session.rollback()
            if outer.is_active:
                await outer.rollback()
            session.expire_all()
        return
    nested = await session.begin_nested()
    try:
        yield session
    finally:
        if nested.is_active:
            await nested.rollback()
        if hasattr(session, "expire_all"):
            session.expire_all()
