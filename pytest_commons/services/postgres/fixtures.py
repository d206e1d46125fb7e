"""PostgreSQL fixtures: the session instance, a fresh database per test, a rollback connection."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_commons.core.run import DATABASE_DEAD_AFTER_SECONDS, owner_stamp, stamp_is_dead
from pytest_commons.plugin.state import service_handle
from pytest_commons.sql.pool import (
    Database,
    DatabasePool,
    remember_schema_error,
    schema_fingerprint,
)

if TYPE_CHECKING:  # imported where used: a run that uses no Postgres does not pay for them
    import psycopg

    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.plugin.report import Leak
    from pytest_commons.services.postgres.spec import PostgresInfo, PostgresSpec

__all__ = ["postgres", "postgres_schema", "postgres_service", "postgres_template", "postgres_tx"]

PostgresSchema = None | str | Path | Callable[["psycopg.Connection[Any]"], None]
OUTER_SAVEPOINT = "pytest_commons_outer"
#: templates kept across runs on a kept server: this prefix and the schema's fingerprint
KEPT_TEMPLATE_PREFIX = "pc_keep_"


class PostgresDatabase(Database):
    """One test's own database: ``.name``, ``.url``, ``.dsn``, ``.info``, ``.connect()``."""

    info: PostgresInfo

    @property
    def url(self) -> str:
        """``postgresql://…`` URL of this database (contains the password, if any)."""
        return self.info.url

    @property
    def dsn(self) -> str:
        """libpq keyword/value string of this database."""
        return self.info.dsn

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new psycopg 3 connection to this database, closed after the test."""
        import psycopg

        return self._track(psycopg.connect(self.info.dsn, **kwargs))


class _Databases(DatabasePool[str]):
    """This worker's PostgreSQL databases: the shared pool (:mod:`pytest_commons.sql.pool`)
    plus cloning from a template ahead of the test that will need it."""

    service_name = "postgres"
    schema_option = "postgres_schema"
    spec: PostgresSpec
    service: ServiceHandle[PostgresInfo]

    def __init__(self, spec: PostgresSpec, service: ServiceHandle[PostgresInfo], prefix: str):
        super().__init__(spec, service, prefix)
        self.tx: dict[str, Any] = {}  # template -> rollback connection on its tx database
        # template -> the next test's database, being cloned in the background (a test then
        # finds its database made while the previous test ran)
        self._ahead: dict[str, Future[str]] = {}
        self._maker: ThreadPoolExecutor | None = None
        self._maker_conn: psycopg.Connection[Any] | None = None
        self.kept_reused = self.kept_built = False  # a kept template was cloned / made
        if self.shared:  # each database says whose it is: collect those of dead owners
            self.collect_dead()

    def connect_admin(self) -> psycopg.Connection[Any]:
        return self.spec.connect(self.service.info, autocommit=True)

    def usable(self, conn: Any) -> bool:
        return not (conn.broken or conn.closed)

    def create(self, name: str, template: str | None = None) -> None:
        import psycopg

        try:
            self.spec.create_database(self.admin, name, template)
        except psycopg.errors.InsufficientPrivilege as exc:
            self._no_createdb(exc)
        except psycopg.OperationalError:
            # the server was restarted (fault injection) and took our admin session with it
            self.admin.close()
            self.admin = self.connect_admin()
            self.spec.create_database(self.admin, name, template)
        self.created.add(name)
        self._stamp(self.admin, name)

    def _stamp(self, conn: psycopg.Connection[Any], name: str) -> None:
        """On a shared server: record who owns ``name`` (see ``collect_dead``)."""
        if self.shared:
            from psycopg import sql

            stamp = json.dumps(owner_stamp(self.prefix), sort_keys=True)
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(stamp)
                )
            )

    def collect_dead(self) -> None:
        """Drop (in the background) every database of a worker proved dead (``stamp_is_dead``:
        its pid is gone on this host, or, from another host, it is older than
        ``DATABASE_DEAD_AFTER_SECONDS``). Databases without a stamp, and live runs', are never
        touched."""
        rows = self.admin.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname LIKE 'pc\\_%'"
        ).fetchall()
        dead = set()
        for _name, comment in rows:
            if comment and '"kept"' in comment:
                continue  # kept by --keep-failed: the user drops it (or `pytest-commons down`)
            if comment and stamp_is_dead(comment, DATABASE_DEAD_AFTER_SECONDS):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    owner = str(json.loads(comment)["owner"])
                    if owner.startswith("pc_") and owner != self.prefix:
                        dead.add(owner)
        for name, comment in rows:
            if comment and '"kept"' in comment:
                continue
            if any(name.startswith(owner + "_") for owner in dead):
                self.drop_later(name)

    def kept_template(self, fingerprint: str, fill: Callable[[str], None]) -> str:
        """The template for a schema whose content is ``fingerprint``, kept on a server kept
        across runs (``--reuse-services``): made by ``fill(name)`` the first time any run
        needs it, then cloned by every later run without running the schema again.
        ``--create-db`` makes it again, once per run. Workers and concurrent runs wait for
        each other on an advisory lock keyed by the fingerprint."""
        from psycopg import sql

        name = f"{KEPT_TEMPLATE_PREFIX}{fingerprint}"
        with self.connect_admin() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (int(fingerprint[:15], 16),))
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (name,),
            ).fetchone()
            stamp = json.loads(row[0]) if row and row[0] and row[0].startswith("{") else {}
            if stamp.get("complete") and not (
                self.rebuild_kept and stamp.get("run") != self.run_id
            ):
                self.kept_reused = True
                return name
            self.spec.drop_database(conn, name)
            self.spec.create_database(conn, name)
            fill(name)
            done = json.dumps({"complete": True, "run": self.run_id, "schema": fingerprint})
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(done)
                )
            )
            self.kept_built = True
        return name

    def leaks(self, name: str) -> list[Leak]:
        from pytest_commons.plugin.report import Leak

        rows = self.admin.execute(
            "SELECT pid, application_name, client_port, state, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 80) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
        return [
            Leak(
                f"backend pid {pid}",
                f"application {app or '-'}, {state or 'no state'}, last query {query or '-'!r}",
                port if port and port > 0 else None,
            )
            for pid, app, port, state, query in rows
        ]

    def mark_kept(self, name: str, nodeid: str) -> None:
        from psycopg import sql

        stamp = json.dumps({**owner_stamp(self.prefix), "kept": nodeid}, sort_keys=True)
        self.admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(stamp))
        )

    def _no_createdb(self, exc: Exception) -> NoReturn:
        info, service = self.service.info, self.service
        where = service.spec.config.source("postgres_url")
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        pytest.fail(
            f"postgres ({service.backend} backend): the role {info.user!r} on {info.address} "
            f"may not create databases ({first}); the postgres fixtures make a database per "
            "test (postgres_tx: one per worker)\n"
            f"  remedy: ALTER ROLE {info.user} CREATEDB; or give a role that has it in "
            f"{where}",
            pytrace=False,
        )

    def take(self, template: str) -> str:
        """A fresh database cloned from ``template``: the one made ahead for it if that
        worked, else one made now; then the next one is begun in the background."""
        name: str | None = None
        ahead = self._ahead.pop(template, None)
        if ahead is not None:
            with contextlib.suppress(Exception):  # made now instead, and any error said then
                name = ahead.result()
        if name is None:
            name = self.name()
            self.create(name, template=template)
        if self._maker is None:
            self._maker = ThreadPoolExecutor(1, thread_name_prefix="commons-pg-make")
        self._ahead[template] = self._maker.submit(self._make_ahead, template)
        return name

    def _make_ahead(self, template: str) -> str:
        import psycopg

        name = self.name()
        for attempt in (1, 2):
            try:
                conn = self._maker_conn
                if conn is None or not self.usable(conn):
                    conn = self._maker_conn = self.connect_admin()
                self.spec.create_database(conn, name, template)
                self._stamp(conn, name)
                break
            except psycopg.OperationalError:
                if attempt == 2:  # the server is going away: the test will say so itself
                    raise
                self._maker_conn = None
        self.created.add(name)
        return name

    def before_close(self) -> None:
        if self._maker is not None:  # what it is making is in `created` once made
            self._maker.shutdown(wait=True)
            if self._maker_conn is not None:
                with contextlib.suppress(Exception):
                    self._maker_conn.close()
        for conn in self.tx.values():
            with contextlib.suppress(Exception):
                conn.close()


def _apply_schema(conn: psycopg.Connection[Any], schema: PostgresSchema) -> None:
    if schema is None:
        return
    if isinstance(schema, Path):
        conn.execute(schema.read_text().encode())
    elif isinstance(schema, str):
        conn.execute(schema.encode())
    else:
        schema(conn)
    conn.commit()


@pytest.fixture(scope="session")
def postgres_service(request: pytest.FixtureRequest) -> ServiceHandle[PostgresInfo]:
    """The run's PostgreSQL instance: a handle with ``.info`` (host, port, user, password,
    ``.url``), ``.backend``, ``.version``, ``.startup_seconds`` and fault injection
    (``stop/start/restart/pause/resume``).

    Scope: session, one server shared by all xdist workers. Cost: the first use waits for the
    start (local ≈0.2 s from the cached cluster; it begins in the background right after
    collection); later uses are free.
    """
    return service_handle(request, "postgres")


@pytest.fixture(scope="session")
def postgres_schema() -> PostgresSchema:
    """Override to create your schema once; every test database is cloned from it.

    Return None (empty database), SQL text, a :class:`~pathlib.Path` to a ``.sql`` file, or a
    callable taking a psycopg connection. Scope: session. Cost: runs once per worker.
    """
    return None


@pytest.fixture(scope="session")
def _postgres_databases(
    request: pytest.FixtureRequest, postgres_service: ServiceHandle[PostgresInfo]
) -> Iterator[_Databases]:
    yield from _Databases.for_session(request, postgres_service)


@pytest.fixture
def postgres_template(_postgres_databases: _Databases, postgres_schema: PostgresSchema) -> str:
    """Name of the template database holding what :func:`postgres_schema` made (``template1``
    itself when there is no schema and the plugin owns the server).

    Each distinct schema gets its own template, made once per worker and then reused, so a
    module or directory that overrides ``postgres_schema`` always gets its own. Scope:
    function (a dictionary lookup). Cost: one CREATE DATABASE plus your schema, the first time
    a schema is seen in a worker.
    """
    dbs = _postgres_databases

    def build(key: object) -> str:
        if postgres_schema is None and dbs.service.owned:
            # nothing to load, and nobody else connects to a server we own: clone template1
            return "template1"
        fingerprint = schema_fingerprint(postgres_schema) if dbs.kept_server else None
        if fingerprint is not None:  # kept across runs: made once, by the first run

            def fill(name: str) -> None:
                with dbs.spec.connect(dbs.service.info.with_db(name)) as conn:
                    _apply_schema(conn, postgres_schema)

            with remember_schema_error(dbs.schema_errors, key, lambda: None):
                return dbs.kept_template(fingerprint, fill)
        name = dbs.template_name()
        dbs.create(name)
        info = dbs.service.info.with_db(name)
        undo = lambda: dbs.drop_later(name)  # noqa: E731
        with remember_schema_error(dbs.schema_errors, key, undo), dbs.spec.connect(info) as conn:
            _apply_schema(conn, postgres_schema)
        return name

    return dbs.template(postgres_schema, build)


@pytest.fixture
def postgres(
    request: pytest.FixtureRequest, _postgres_databases: _Databases, postgres_template: str
) -> Iterator[PostgresDatabase]:
    """A fresh database for this test, cloned from :func:`postgres_template`.

    Gives ``.name``, ``.url``, ``.dsn``, ``.info`` and ``.connect()`` (psycopg 3 connections,
    closed after the test). Scope: function. Cost: one CREATE DATABASE … TEMPLATE (≈10 ms on
    tmpfs), made in the background while the previous test runs; the drop happens in the
    background too. After the test, connections it left open to the database are reported
    (``--commons-leaks``; one ``pg_stat_activity`` query); ``--keep-failed`` keeps the
    database of a failing test.
    """
    name = _postgres_databases.take(postgres_template)
    database = PostgresDatabase(_postgres_databases.service, name)
    yield database
    _postgres_databases.finish(request.node, database)


_ROLLBACK_CLASS: type[Any] | None = None


def rollback_connection_class() -> type[psycopg.Connection[Any]]:
    """A psycopg Connection whose ``commit()``/``rollback()`` stay inside an outer transaction."""
    global _ROLLBACK_CLASS
    if _ROLLBACK_CLASS is None:
        import psycopg

        class RollbackConnection(psycopg.Connection[Any]):
            """``commit()`` releases and renews a savepoint; the test's end rolls back all."""

            _commons_outer = False
            commons_db = ""  # the database it is connected to (cloned for postgres_tx)

            def commit(self) -> None:
                if not self._commons_outer:
                    return super().commit()
                self.execute(f"RELEASE SAVEPOINT {OUTER_SAVEPOINT}")
                self.execute(f"SAVEPOINT {OUTER_SAVEPOINT}")

            def rollback(self) -> None:
                if not self._commons_outer:
                    return super().rollback()
                self.execute(f"ROLLBACK TO SAVEPOINT {OUTER_SAVEPOINT}")

            def begin_outer(self) -> None:
                """BEGIN and the outer savepoint in one round trip (``execute`` would send
                its own BEGIN first, and wait for it)."""
                from psycopg import pq

                self._commons_outer = False
                super().rollback()
                result = self.pgconn.exec_(f"BEGIN; SAVEPOINT {OUTER_SAVEPOINT}".encode())
                if result.status != pq.ExecStatus.COMMAND_OK:
                    message = (result.error_message or b"").decode("utf-8", "replace")
                    super().rollback()
                    raise psycopg.OperationalError(f"postgres_tx: could not begin: {message}")
                self._commons_outer = True

            def end_outer(self) -> bool:
                """Roll the test's work back; False if the outer savepoint was gone (a raw
                ``COMMIT``/``ROLLBACK`` ended the transaction: what came before is committed).
                One round trip when it was there: both statements in one simple query, the
                second not run if the first fails."""
                self._commons_outer = False
                try:
                    self.execute(f"ROLLBACK TO SAVEPOINT {OUTER_SAVEPOINT}; ROLLBACK")
                except psycopg.errors.InvalidSavepointSpecification:
                    super().rollback()
                    return False
                return True

        _ROLLBACK_CLASS = RollbackConnection
    return _ROLLBACK_CLASS


@pytest.fixture
def postgres_tx(
    _postgres_databases: _Databases, postgres_template: str
) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg 3 connection inside a transaction that is rolled back after the test.

    Application code may call ``commit()`` (it releases a savepoint instead) or use
    ``conn.transaction()``; nothing it writes survives the test. The database is cloned from
    :func:`postgres_template` once per worker (and schema) and the connection is kept.
    Scope: function. Cost: ≈0.5 ms per test.
    """
    dbs = _postgres_databases
    conn: Any = dbs.tx.get(postgres_template)
    if conn is None or conn.closed or conn.broken:
        if conn is not None:  # the test before closed or broke it: a new database, not its name
            _discard_tx(dbs, postgres_template)
        name = dbs.name(f"tx{next(dbs._counter)}")  # "_tx": a rolled-back connection's database
        dbs.create(name, template=postgres_template)
        conn = rollback_connection_class().connect(dbs.service.info.with_db(name).dsn)
        conn.commons_db = name
        dbs.tx[postgres_template] = conn
    conn.begin_outer()
    yield conn
    if conn.closed or conn.broken:
        return
    if not conn.end_outer():
        # committed rows (and the session's advisory locks) would reach later tests: this
        # database and connection are not used again
        _discard_tx(dbs, postgres_template)
        pytest.fail(
            "postgres_tx: the test ended the fixture's transaction itself (a raw COMMIT or "
            "ROLLBACK statement); what it wrote before that is committed and is not rolled "
            "back. Call conn.commit()/conn.rollback() (they stay inside the fixture's "
            "transaction), or use the `postgres` fixture for code that must commit.",
            pytrace=False,
        )


def _discard_tx(dbs: _Databases, template: str) -> None:
    """Close the rollback connection of ``template`` and drop its database in the background."""
    conn = dbs.tx.pop(template)
    name = conn.commons_db
    with contextlib.suppress(Exception):
        conn.close()
    dbs.drop_later(name)
