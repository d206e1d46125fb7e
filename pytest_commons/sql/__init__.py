"""SQLAlchemy helpers behind the ``sql_db`` fixture: URLs, engines, schema, rollback isolation.

Imported only when a test asks for ``sql_db`` (SQLAlchemy is a heavy import). Everything here
works on an already running server; the fixtures in :mod:`pytest_commons.sql.fixtures` decide
which server and which database.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import asyncio

    from alembic.config import Config as AlembicConfig
    from sqlalchemy import Connection, Engine, MetaData
    from sqlalchemy.ext.asyncio import (
        AsyncConnection,
        AsyncEngine,
        AsyncSession,
        AsyncTransaction,
        async_sessionmaker,
    )
    from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "RELATIONAL_BACKENDS",
    "SqlBackend",
    "SqlDatabase",
    "SqlSchema",
    "alembic_config",
    "apply_schema",
    "make_async_engine",
    "make_engine",
    "schema_fingerprint",
    "sqlalchemy_url",
]

#: The relational backends ``@pytest.mark.backends(...)`` and ``--db-backends`` accept.
RELATIONAL_BACKENDS: tuple[str, ...] = ("postgres", "mysql", "sqlite")

#: What a ``sql_schema`` fixture may return: SQLAlchemy ``MetaData`` (``create_all``), an
#: Alembic ``Config``, a path to an ``alembic.ini`` (``upgrade head``), or None.
SqlSchema = Union["MetaData", "AlembicConfig", str, "os.PathLike[str]", None]

_DRIVERS = {
    # backend: (sync driver, async driver)
    "postgres": ("postgresql+psycopg", "postgresql+psycopg_async"),
    "mysql": ("mysql+pymysql", "mysql+aiomysql"),
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
}


def sqlalchemy_url(
    backend: str,
    *,
    host: str = "",
    port: int | None = None,
    user: str = "",
    password: str = "",
    database: str = "",
    asynchronous: bool = False,
) -> str:
    """The SQLAlchemy URL string (password included) for ``backend``'s sync or async driver.

    For sqlite, ``database`` is the file path.
    """
    from sqlalchemy.engine import URL

    drivername = _DRIVERS[backend][1 if asynchronous else 0]
    if backend == "sqlite":
        return URL.create(drivername, database=database).render_as_string(hide_password=False)
    query = {"charset": "utf8mb4"} if backend == "mysql" else {}
    url = URL.create(
        drivername,
        username=user or None,
        password=password or None,
        host=host,
        port=port,
        database=database,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def _sqlite_savepoints(sync_engine: Engine) -> None:
    """pysqlite/aiosqlite start transactions lazily and break SAVEPOINT; let SQLAlchemy do it.

    The SQLAlchemy documentation's recipe ("Serializable isolation / Savepoints").
    """
    from sqlalchemy import event

    @event.listens_for(sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def _connect_args(backend: str) -> dict[str, Any]:
    # PyMySQL builds a TLS context on every connect (≈30 ms) unless told not to
    return {"ssl_disabled": True} if backend == "mysql" else {}


def make_engine(backend: str, url: str, **kwargs: Any) -> Engine:
    """A sync Engine for ``url`` with the fixes rollback isolation needs (sqlite savepoints,
    no TLS handshake for local MySQL)."""
    from sqlalchemy import create_engine

    kwargs.setdefault("connect_args", _connect_args(backend))
    engine = create_engine(url, **kwargs)
    if backend == "sqlite":
        _sqlite_savepoints(engine)
    return engine


def make_async_engine(backend: str, url: str, **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for ``url`` with a NullPool: it holds no connection between uses, so one
    engine serves every event loop (a pooled asyncio connection belongs to the loop it was
    opened in)."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    kwargs.setdefault("poolclass", NullPool)
    engine = create_async_engine(url, **kwargs)
    if backend == "sqlite":
        _sqlite_savepoints(engine.sync_engine)
    return engine


def alembic_config(schema: AlembicConfig | str | os.PathLike[str], url: str) -> AlembicConfig:
    """An Alembic ``Config`` (from a Config or an ``alembic.ini`` path) pointed at ``url``.

    ``sqlalchemy.url`` is set, so the ``env.py`` that ``alembic init`` writes uses it.
    """
    from alembic.config import Config

    if isinstance(schema, Config):
        base = schema
        cfg = Config(base.config_file_name, ini_section=base.config_ini_section)
        cfg.cmd_opts = base.cmd_opts
        for key, value in base.get_section(base.config_ini_section, {}).items():
            cfg.set_main_option(key, value.replace("%", "%%"))
        cfg.attributes.update(base.attributes)
    else:
        path = Path(schema)
        if path.is_dir():
            path = path / "alembic.ini"
        if not path.is_file():
            raise FileNotFoundError(f"sql_schema: no Alembic ini file at {path}")
        cfg = Config(str(path))
        location = cfg.get_main_option("script_location")
        if location and not os.path.isabs(location) and ":" not in location:
            # relative to the ini file, not to the directory pytest runs in
            here = str(path.parent.resolve())
            cfg.set_main_option("script_location", os.path.join(here, location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def schema_fingerprint(schema: SqlSchema, backend: str) -> str | None:
    """A key of a ``sql_schema``'s content that holds across runs (templates kept on a server
    kept by ``--reuse-services``): for ``MetaData``, the DDL it creates on ``backend``; for
    Alembic, the ini file and every file under its ``script_location`` (the migrations); None
    when it cannot be told (a ``script_location`` in a package)."""
    import hashlib

    if schema is None:
        return None
    digest = hashlib.sha256(f"sql_schema\0{backend}\0".encode())
    from sqlalchemy import MetaData

    if isinstance(schema, MetaData):
        from sqlalchemy.schema import CreateIndex, CreateTable

        dialect = make_engine(backend, sqlalchemy_url(backend, database="x")).dialect
        for table in schema.sorted_tables:
            digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
        return digest.hexdigest()[:24]
    try:
        cfg = alembic_config(schema, "postgresql://fingerprint")
    except (FileNotFoundError, TypeError):
        return None
    location = cfg.get_main_option("script_location") or ""
    if not location or (":" in location and not os.path.isabs(location)):
        return None
    if cfg.config_file_name:
        digest.update(Path(cfg.config_file_name).read_bytes())
    root = Path(location)
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


def apply_schema(engine: Engine, url: str, schema: SqlSchema) -> None:
    """Create ``schema`` in the database of ``engine``: ``MetaData.create_all``, or Alembic
    ``upgrade head`` for an Alembic ``Config``/``alembic.ini`` path; None does nothing."""
    if schema is None:
        return
    from sqlalchemy import MetaData

    if isinstance(schema, MetaData):
        schema.create_all(engine)
        return
    if isinstance(schema, (str, os.PathLike)) or type(schema).__name__ == "Config":
        from alembic import command

        command.upgrade(alembic_config(schema, url), "head")
        return
    raise TypeError(
        "sql_schema must return SQLAlchemy MetaData, an Alembic Config, a path to alembic.ini "
        f"or None, not {type(schema).__name__}"
    )


class SqlBackend:
    """One relational backend's database for this worker: URLs, engines and the connection
    that per-test transactions run on. Created once per backend per worker."""

    def __init__(self, name: str, url: str, async_url: str) -> None:
        self.name = name
        self.url = url
        self.async_url = async_url
        self.engine = make_engine(name, url)
        self._async_engine: AsyncEngine | None = None
        self._connection: Connection | None = None

    @property
    def async_engine(self) -> AsyncEngine:
        """A NullPool AsyncEngine (made on first use)."""
        if self._async_engine is None:
            self._async_engine = make_async_engine(self.name, self.async_url)
        return self._async_engine

    def connection(self) -> Connection:
        """The worker's long-lived connection (re-opened if a test broke or closed it)."""
        conn = self._connection
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            conn = self._connection = self.engine.connect()
        return conn

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        self.engine.dispose()
        if self._async_engine is not None:
            # a NullPool holds no connection: nothing to await
            self._async_engine.sync_engine.dispose(close=False)

    def __repr__(self) -> str:
        from sqlalchemy.engine import make_url

        return f"<SqlBackend {self.name} {make_url(self.url)!r}>"


class SqlDatabase:
    """What ``sql_db`` gives a test: a database on one backend inside a transaction that is
    rolled back after the test.

    - ``.backend``: ``"postgres"``, ``"mysql"`` or ``"sqlite"``; ``.url`` / ``.async_url``:
      SQLAlchemy URL strings (password included).
    - ``.connection`` (sync ``Connection``) and ``.session`` (sync ``Session``) are inside
      the test's transaction; ``session.commit()`` releases a savepoint instead of
      committing, so application code may commit and still leave nothing behind.
    - ``.sessionmaker`` makes more such sessions (``Session(bind=connection,
      join_transaction_mode="create_savepoint")``).
    - ``.async_connection`` / ``.async_session`` / ``.async_sessionmaker``: the same for
      asyncio tests (pytest-asyncio), on their own connection in the test's event loop.
    - ``.engine`` / ``.async_engine``: the backend's engines. Connections you open from them
      yourself are *not* rolled back: pass ``.connection`` where code wants an engine.
    """

    def __init__(
        self,
        backend: SqlBackend,
        run_async: Callable[[Awaitable[Any]], Any] | None = None,
    ) -> None:
        self._backend = backend
        self.backend: str = backend.name
        self.url: str = backend.url
        self.async_url: str = backend.async_url
        self.engine: Engine = backend.engine
        self._run_async = run_async
        self._connection = backend.connection()
        self._transaction = self._connection.begin()
        self._sessions: list[Session] = []
        self._aconn: AsyncConnection | None = None
        self._atrans: Any = None
        self._asessions: list[AsyncSession] = []
        if run_async is not None:
            run_async(self._async_begin())

    # sync ----------------------------------------------------------------------------------
    @property
    def connection(self) -> Connection:
        """The sync Connection inside this test's transaction (don't call its ``commit()``:
        that ends the test's transaction; use ``begin_nested()`` or a session)."""
        return self._connection

    @functools.cached_property
    def sessionmaker(self) -> sessionmaker[Session]:
        """A ``sessionmaker`` whose sessions join this test's transaction."""
        from sqlalchemy.orm import sessionmaker

        maker = sessionmaker(bind=self._connection, join_transaction_mode="create_savepoint")
        return _Tracking(maker, self._sessions)  # type: ignore[return-value]

    @functools.cached_property
    def session(self) -> Session:
        """A sync ORM ``Session`` inside this test's transaction; ``commit()`` is safe."""
        return self.sessionmaker()

    # async ---------------------------------------------------------------------------------
    def _need_async(self) -> AsyncConnection:
        if self._aconn is None:
            raise RuntimeError(
                "sql_db's async API needs an asyncio test run by pytest-asyncio: mark it "
                "@pytest.mark.asyncio (or set asyncio_mode = auto) and make it `async def`"
            )
        return self._aconn

    @property
    def async_engine(self) -> AsyncEngine:
        """The backend's AsyncEngine (NullPool). Its own connections are not rolled back."""
        return self._backend.async_engine

    @property
    def async_connection(self) -> AsyncConnection:
        """The AsyncConnection inside this test's transaction, opened in the test's loop."""
        return self._need_async()

    @functools.cached_property
    def async_sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """An ``async_sessionmaker`` whose sessions join this test's async transaction
        (``expire_on_commit=False``, as SQLAlchemy recommends for asyncio)."""
        from sqlalchemy.ext.asyncio import async_sessionmaker

        maker = async_sessionmaker(
            bind=self._need_async(),
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )
        return _Tracking(maker, self._asessions)  # type: ignore[return-value]

    @functools.cached_property
    def async_session(self) -> AsyncSession:
        """An ``AsyncSession`` inside this test's transaction; ``await commit()`` is safe."""
        return self.async_sessionmaker()

    async def _async_begin(self) -> None:
        self._aconn = await self._backend.async_engine.connect()
        self._atrans = await self._aconn.begin()

    async def _async_end(self) -> None:
        try:
            for asession in self._asessions:
                with contextlib.suppress(Exception):
                    await asession.close()
            trans: AsyncTransaction | None = self._atrans
            if trans is not None and trans.is_active:
                await trans.rollback()
        finally:
            if self._aconn is not None:
                await self._aconn.close()

    def close(self) -> None:
        """Roll everything back (called by the fixture after the test)."""
        try:
            for session in self._sessions:
                with contextlib.suppress(Exception):
                    session.close()
            if self._transaction.is_active:
                self._transaction.rollback()
            elif self._connection.in_transaction():
                self._connection.rollback()
        finally:
            if self._run_async is not None and self._aconn is not None:
                self._run_async(self._async_end())

    def __repr__(self) -> str:
        return f"<SqlDatabase {self.backend}>"


class _Tracking:
    """Wraps a session factory; remembers the sessions it made so the fixture closes them.

    ``maker.begin()`` (a context manager closing its own session) passes straight through.
    """

    def __init__(self, maker: Any, made: list[Any]) -> None:
        self._maker, self._made = maker, made

    def __call__(self, **kwargs: Any) -> Any:
        session = self._maker(**kwargs)
        self._made.append(session)
        return session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._maker, name)


def run_in_loop(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[Any]], Any]:
    """``run(coro)`` on ``loop`` from outside it (fixture setup/teardown of asyncio tests)."""

    def run(awaitable: Awaitable[Any]) -> Any:
        return loop.run_until_complete(awaitable)

    return run
