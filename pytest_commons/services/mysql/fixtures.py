"""MySQL/MariaDB fixtures: the session instance, a fresh database per test, a rollback connection.

MySQL has no ``CREATE DATABASE … TEMPLATE``: the schema is applied once per worker to a
template database, captured (``SHOW CREATE TABLE``/``VIEW``/``TRIGGER``/``PROCEDURE``/``FUNCTION``/
``EVENT`` plus which tables hold rows), and every test database is created by replaying that
capture in one round trip. An object that cannot be captured fails the schema build, named.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.core.run import DATABASE_DEAD_AFTER_SECONDS, owner_stamp, stamp_is_dead
from pytest_commons.plugin.state import service_handle
from pytest_commons.sql.pool import Database, DatabasePool, remember_schema_error

if TYPE_CHECKING:  # imported where used: a run that uses no MySQL does not pay for them
    import pymysql.connections

    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.plugin.report import Leak
    from pytest_commons.services.mysql.spec import MysqlInfo, MysqlSpec

__all__ = ["mysql", "mysql_schema", "mysql_service", "mysql_template", "mysql_tx"]

MysqlSchema = None | str | Path | Callable[["pymysql.connections.Connection[Any]"], None]
OUTER_SAVEPOINT = "pytest_commons_outer"
ER_SP_DOES_NOT_EXIST = 1305  # the savepoint is gone: DDL or a deadlock ended the transaction
#: on a shared server, who owns which databases: MySQL has no database comments (Postgres
#: keeps the stamp in one), so a table holds a stamp per worker prefix. Named like the
#: databases (``pc_…``), so a grant on ``pc\_%`` covers it.
OWNERS_DB = "pc__owners"


class MysqlDatabase(Database):
    """One test's own database: ``.name``, ``.url``, ``.info``, ``.sqlalchemy_url``,
    ``.connect()``."""

    info: MysqlInfo

    @property
    def url(self) -> str:
        """``mysql://…`` URL of this database (contains the password, if any)."""
        return self.info.url

    @property
    def sqlalchemy_url(self) -> str:
        """``mysql+pymysql://…`` URL; pass ``connect_args=db.info.connect_args``."""
        return self.info.sqlalchemy_url

    def connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect`` (TLS off on loopback)."""
        return self.info.connect_kwargs(**overrides)

    def connect(self, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        """A new PyMySQL connection to this database (no TLS on loopback), closed after the
        test. Keyword arguments go to ``pymysql.connect`` (e.g. ``autocommit=True``)."""
        import pymysql

        return self._track(pymysql.connect(**self.info.connect_kwargs(**kwargs)))


@dataclass
class _Capture:
    """What a template database holds, as statements that recreate it in another database."""

    tables: list[str] = field(default_factory=list)  # CREATE TABLE statements
    copies: list[tuple[str, str]] = field(default_factory=list)  # (table, column list) with rows
    views: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    routines: list[str] = field(default_factory=list)  # procedures and functions
    events: list[str] = field(default_factory=list)

    def clone_sql(self, template: str, name: str) -> str:
        from pytest_commons.services.mysql.spec import quote_ident

        new, tpl = quote_ident(name), quote_ident(template)
        parts = [f"CREATE DATABASE {new}", f"USE {new}", "SET SESSION foreign_key_checks=0"]
        parts += self.tables
        parts += [
            f"INSERT INTO {new}.`{table}` ({cols}) SELECT {cols} FROM {tpl}.`{table}`"
            for table, cols in self.copies
        ]
        parts += self.views
        parts += self.routines
        parts += self.triggers
        parts += self.events
        parts.append("SET SESSION foreign_key_checks=1")
        return ";\n".join(parts)


def _capture(conn: pymysql.connections.Connection[Any], template: str) -> _Capture:
    cap = _Capture()
    from pytest_commons.services.mysql.spec import quote_ident

    qualified = f"{quote_ident(template)}."
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
            (template,),
        )
        objects = list(cur.fetchall())
        views: dict[str, str] = {}
        for table, kind in objects:
            ident = "`" + table.replace("`", "``") + "`"
            if kind == "VIEW":
                cur.execute(f"SHOW CREATE VIEW {qualified}{ident}")
                views[table] = str(cur.fetchone()[1]).replace(qualified, "")
                continue
            cur.execute(f"SHOW CREATE TABLE {qualified}{ident}")
            cap.tables.append(str(cur.fetchone()[1]))
            cur.execute(f"SELECT 1 FROM {qualified}{ident} LIMIT 1")
            if cur.fetchone():
                cur.execute(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = %s AND EXTRA NOT LIKE %s AND EXTRA NOT LIKE %s "
                    "ORDER BY ORDINAL_POSITION",
                    (template, table, "%GENERATED%", "%VIRTUAL%"),
                )
                cols = ", ".join("`" + c[0].replace("`", "``") + "`" for c in cur.fetchall())
                cap.copies.append((table.replace("`", "``"), cols))
        cap.views = _view_order(views)
        cur.execute(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
            "ORDER BY ACTION_ORDER",
            (template,),
        )
        for (trigger,) in list(cur.fetchall()):
            cur.execute(f"SHOW CREATE TRIGGER {qualified}`{trigger.replace('`', '``')}`")
            cap.triggers.append(str(cur.fetchone()[2]))
        cur.execute(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (template,),
        )
        for kind, routine in list(cur.fetchall()):
            cap.routines.append(_show_create(cur, str(kind), qualified, str(routine), 2))
        cur.execute(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
            "ORDER BY EVENT_NAME",
            (template,),
        )
        for (event,) in list(cur.fetchall()):
            cap.events.append(_show_create(cur, "EVENT", qualified, str(event), 3))
    return cap


class SchemaCopyError(Exception):
    """An object of ``mysql_schema`` cannot be copied into the per-test databases."""


def _show_create(cur: Any, kind: str, qualified: str, name: str, column: int) -> str:
    """``SHOW CREATE PROCEDURE|FUNCTION|EVENT`` of one object, with the template's name taken
    out; raises :class:`SchemaCopyError` naming the object when the server does not show it."""
    ident = "`" + name.replace("`", "``") + "`"
    try:
        cur.execute(f"SHOW CREATE {kind} {qualified}{ident}")
        row = cur.fetchone()
    except Exception as exc:  # pymysql's errors: reported with the object's name
        raise SchemaCopyError(
            f"mysql_schema: {kind.lower()} {name} cannot be copied into the test databases: "
            f"SHOW CREATE {kind} failed: {exc}"
        ) from exc
    text = row[column] if row and len(row) > column else None
    if not text:
        raise SchemaCopyError(
            f"mysql_schema: {kind.lower()} {name} cannot be copied into the test databases: "
            "SHOW CREATE shows no definition (does the user lack privileges on it?)"
        )
    return str(text).replace(qualified, "")


def _view_order(views: dict[str, str]) -> list[str]:
    """CREATE VIEW statements, views that use other views after those."""
    ordered: list[str] = []
    pending = dict(views)
    while pending:
        ready = [
            name
            for name, ddl in pending.items()
            if not any(
                other != name and f"`{other}`" in ddl.split(" AS ", 1)[-1] for other in pending
            )
        ]
        for name in ready or list(pending):  # a cycle cannot exist; keep going regardless
            ordered.append(pending.pop(name))
    return ordered


def connection_lost(exc: Exception) -> bool:
    """Whether a PyMySQL error means the session is gone (server restarted, crashed or the
    connection closed after an earlier such error), so a new connection may succeed."""
    import pymysql

    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # (0, ''): used after PyMySQL closed it on a lost connection
    return bool(exc.args) and exc.args[0] in (2006, 2013, 2014, 2055)


class _Databases(DatabasePool["tuple[str | None, _Capture | None]"]):
    """This worker's MySQL databases: the shared pool (:mod:`pytest_commons.sql.pool`); a
    template is a database and its capture (MySQL has no ``CREATE DATABASE … TEMPLATE``)."""

    service_name = "mysql"
    schema_option = "mysql_schema"
    spec: MysqlSpec
    service: ServiceHandle[MysqlInfo]

    def __init__(self, spec: MysqlSpec, service: ServiceHandle[MysqlInfo], prefix: str) -> None:
        super().__init__(spec, service, prefix)
        self.tx: dict[str | None, str] = {}  # template -> the rollback fixture's database
        self.tx_conns: dict[str, Any] = {}  # rollback database -> its kept connection
        if self.shared:  # this worker's prefix is stamped with its owner; dead owners' go
            self._collect_and_stamp()

    def connect_admin(self) -> pymysql.connections.Connection[Any]:
        from pymysql.constants import CLIENT

        info = self.service.info.with_db("")
        return self.spec.connect(info, client_flag=CLIENT.MULTI_STATEMENTS)

    def drop_connection(self) -> pymysql.connections.Connection[Any]:
        return self.spec.connect(self.service.info.with_db(""))

    def usable(self, conn: Any) -> bool:
        return bool(conn.open)

    def ensure_admin(self) -> None:
        try:
            self.admin.ping(reconnect=False)
        except Exception:
            self.admin = self.connect_admin()

    def before_close(self) -> None:
        for conn in self.tx_conns.values():
            with contextlib.suppress(Exception):
                conn.close()

    def after_sweep(self) -> None:
        self._unstamp()

    def _collect_and_stamp(self) -> None:
        """Stamp this worker's prefix in ``OWNERS_DB``, then drop (in the background) every
        database of an owner proved dead (``stamp_is_dead``: its pid is gone on this host, or,
        from another host, it is older than ``DATABASE_DEAD_AFTER_SECONDS``); an owner whose
        databases are all gone loses its row. Databases of no recorded owner, and live
        owners', are never touched. A role that may not create ``OWNERS_DB`` gets a warning:
        its runs' leftovers are then not collected."""
        import warnings

        table = f"`{OWNERS_DB}`.owners"
        try:
            self.run(
                f"CREATE DATABASE IF NOT EXISTS `{OWNERS_DB}`; "
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(owner VARCHAR(64) PRIMARY KEY, stamp TEXT NOT NULL)"
            )
            with self.admin.cursor() as cur:
                cur.execute(
                    f"INSERT INTO {table} (owner, stamp) VALUES (%s, %s) "
                    "ON DUPLICATE KEY UPDATE stamp = VALUES(stamp)",
                    (self.prefix, json.dumps(owner_stamp(self.prefix), sort_keys=True)),
                )
                cur.execute(f"SELECT owner, stamp FROM {table}")
                owners = list(cur.fetchall())
                cur.execute("SHOW DATABASES LIKE 'pc\\_%'")
                names = [row[0] for row in cur.fetchall()]
        except Exception as exc:
            warnings.warn(
                f"mysql ({self.service.backend} backend): cannot keep the owner stamps in "
                f"{OWNERS_DB} ({exc}); databases of killed runs on this shared server are not "
                f"collected. Remedy: let the user create the database {OWNERS_DB}",
                stacklevel=2,
            )
            return
        kept = {str(owner) for owner, stamp in owners if '"kept"' in str(stamp)}
        names = [name for name in names if name not in kept]
        for owner, stamp in owners:
            if owner == self.prefix or not str(owner).startswith("pc_") or owner in kept:
                continue
            if not stamp_is_dead(str(stamp), DATABASE_DEAD_AFTER_SECONDS):
                continue
            left = [name for name in names if name.startswith(f"{owner}_")]
            for name in left:
                self.drop_later(name)
            if not left:  # all dropped (by an earlier run): the owner goes too
                with self.admin.cursor() as cur:
                    cur.execute(f"DELETE FROM {table} WHERE owner = %s", (owner,))

    def leaks(self, name: str) -> list[Leak]:
        from pytest_commons.plugin.report import Leak

        with self.admin.cursor() as cur:
            cur.execute(
                "SELECT id, host, command, time, left(info, 80) "
                "FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                (name,),
            )
            rows = list(cur.fetchall())
        leaks = []
        for pid, host, command, seconds, info in rows:
            port = str(host or "").rpartition(":")[2]
            leaks.append(
                Leak(
                    f"connection id {pid}",
                    f"from {host}, {command} for {seconds} s, query {info or '-'!r}",
                    int(port) if port.isdigit() else None,
                )
            )
        return leaks

    def mark_kept(self, name: str, nodeid: str) -> None:
        stamp = json.dumps({**owner_stamp(self.prefix), "kept": nodeid}, sort_keys=True)
        self.run(
            f"CREATE DATABASE IF NOT EXISTS `{OWNERS_DB}`; "
            f"CREATE TABLE IF NOT EXISTS `{OWNERS_DB}`.owners "
            "(owner VARCHAR(64) PRIMARY KEY, stamp TEXT NOT NULL)"
        )
        with self.admin.cursor() as cur:  # a row of its own: no sweep takes a kept database
            cur.execute(
                f"REPLACE INTO `{OWNERS_DB}`.owners (owner, stamp) VALUES (%s, %s)",
                (name, stamp),
            )

    def _unstamp(self) -> None:
        if self.shared:
            with contextlib.suppress(Exception), self.admin.cursor() as cur:
                cur.execute(f"DELETE FROM `{OWNERS_DB}`.owners WHERE owner = %s", (self.prefix,))

    def run(self, sql: str) -> None:
        """Run ``sql`` (one or more statements) on the admin session."""
        with self.admin.cursor() as cur:
            cur.execute(sql)
            while cur.nextset():
                pass

    def create(
        self, name: str, template: str | None = None, capture: _Capture | None = None
    ) -> None:
        import pymysql

        if capture is not None and template is not None:
            sql = capture.clone_sql(template, name)
        else:
            from pytest_commons.services.mysql.spec import quote_ident

            sql = f"CREATE DATABASE {quote_ident(name)}"
        self.created.add(name)
        if not self.admin.open:  # lost earlier (the server was down): connect again first
            self._reconnect()
        try:
            self.run(sql)
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
            if not connection_lost(exc):
                raise
            # the server was restarted or crashed and took our admin session with it
            self._reconnect()
            self.spec.drop_database(self.admin, name)
            self.run(sql)

    def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            self.admin.close()
        self.admin = self.connect_admin()  # raises while the server is down; tried again next


def _apply_schema(conn: pymysql.connections.Connection[Any], schema: MysqlSchema) -> None:
    if schema is None:
        return
    if callable(schema):
        schema(conn)
    else:
        sql = schema.read_text() if isinstance(schema, Path) else schema
        with conn.cursor() as cur:
            cur.execute(sql)
            while cur.nextset():
                pass
    conn.commit()


@pytest.fixture(scope="session")
def mysql_service(request: pytest.FixtureRequest) -> ServiceHandle[MysqlInfo]:
    """The run's MySQL/MariaDB instance: a handle with ``.info`` (host, port, user, password,
    dbname, ``.url``, ``.connect_kwargs()``), ``.backend``, ``.version``, ``.startup_seconds``
    and fault injection (``stop/start/restart/pause/resume``).

    Scope: session, one server shared by all xdist workers. Cost: the first use waits for the
    start (local ≈0.3 s from the cached data directory, begun in the background right after
    collection); later uses are free.
    """
    return service_handle(request, "mysql")


@pytest.fixture(scope="session")
def mysql_schema() -> MysqlSchema:
    """Override to create your schema once; every test database is created from it.

    Return None (empty database), SQL text (several statements are fine), a
    :class:`~pathlib.Path` to a ``.sql`` file, or a callable taking a PyMySQL connection to the
    template database. Tables (with their rows), views, triggers, procedures, functions and
    events are copied (an object that cannot be copied fails the build, named). A module or
    directory that overrides it gets a template of its own. Scope: session. Cost: runs once
    per worker.
    """
    return None


@pytest.fixture(scope="session")
def _mysql_databases(
    request: pytest.FixtureRequest, mysql_service: ServiceHandle[MysqlInfo]
) -> Iterator[_Databases]:
    yield from _Databases.for_session(request, mysql_service)


@pytest.fixture
def _mysql_capture(
    _mysql_databases: _Databases, mysql_schema: MysqlSchema
) -> tuple[str | None, _Capture | None]:
    dbs = _mysql_databases

    def build(key: object) -> tuple[str | None, _Capture | None]:
        if mysql_schema is None:
            return (None, None)
        name = dbs.template_name()
        dbs.create(name)
        from pymysql.constants import CLIENT

        with remember_schema_error(dbs.schema_errors, key, lambda: dbs.drop_later(name)):
            conn = dbs.spec.connect(
                dbs.service.info.with_db(name),
                autocommit=False,
                client_flag=CLIENT.MULTI_STATEMENTS,
            )
            try:
                _apply_schema(conn, mysql_schema)
                return (name, _capture(conn, name))
            finally:
                conn.close()

    return dbs.template(mysql_schema, build)


@pytest.fixture
def mysql_template(_mysql_capture: tuple[str | None, _Capture | None]) -> str | None:
    """Name of the template database holding what :func:`mysql_schema` made (None when
    there is no schema: test databases then start empty).

    Each distinct schema gets its own template, made once per worker and then reused, so a
    module or directory that overrides ``mysql_schema`` always gets its own. Scope: function
    (a dictionary lookup). Cost: one CREATE DATABASE plus your schema, the first time a schema
    is seen in a worker.
    """
    return _mysql_capture[0]


@pytest.fixture
def mysql(
    request: pytest.FixtureRequest,
    _mysql_databases: _Databases,
    _mysql_capture: tuple[str | None, _Capture | None],
) -> Iterator[MysqlDatabase]:
    """A fresh database for this test, with the tables, rows, views and triggers of
    :func:`mysql_template`.

    Gives ``.name``, ``.url``, ``.info``, ``.sqlalchemy_url`` and ``.connect()`` (PyMySQL
    connections without TLS, closed after the test). Scope: function. Cost: one round trip that
    creates the database and replays the schema (≈2 ms empty, ≈1-2 ms more per table on tmpfs);
    the drop happens in the background. After the test, connections it left open to the
    database are reported (``--commons-leaks``; one process-list query); ``--keep-failed``
    keeps the database of a failing test.
    """
    template, capture = _mysql_capture
    name = _mysql_databases.name()
    _mysql_databases.create(name, template, capture)
    database = MysqlDatabase(_mysql_databases.service, name)
    yield database
    _mysql_databases.finish(request.node, database)


_ROLLBACK_CLASS: type[Any] | None = None


def rollback_connection_class() -> type[pymysql.connections.Connection[Any]]:
    """A PyMySQL Connection whose ``begin()``/``commit()``/``rollback()`` stay inside an outer
    transaction (a savepoint stands in for the application's transactions)."""
    global _ROLLBACK_CLASS
    if _ROLLBACK_CLASS is None:
        import pymysql
        import pymysql.connections

        class RollbackConnection(pymysql.connections.Connection):  # type: ignore[misc]
            """``commit()`` releases and renews a savepoint; the test's end rolls back all."""

            _commons_outer = False

            def _renew(self, first: str) -> None:
                try:
                    self.query(first)
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] != ER_SP_DOES_NOT_EXIST:
                        raise
                    # DDL committed implicitly, or a deadlock rolled back: start over
                    self.query("START TRANSACTION")
                self.query(f"SAVEPOINT {OUTER_SAVEPOINT}")

            def begin(self) -> None:
                if not self._commons_outer:
                    super().begin()
                    return
                # already inside the outer transaction; BEGIN would commit it

            def commit(self) -> None:
                if not self._commons_outer:
                    super().commit()
                    return
                self._renew(f"RELEASE SAVEPOINT {OUTER_SAVEPOINT}")

            def rollback(self) -> None:
                if not self._commons_outer:
                    super().rollback()
                    return
                try:
                    self.query(f"ROLLBACK TO SAVEPOINT {OUTER_SAVEPOINT}")
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] != ER_SP_DOES_NOT_EXIST:
                        raise
                    # DDL ended the outer transaction: roll back what was written since, then
                    # start over (START TRANSACTION alone would commit it)
                    super().rollback()
                    self._renew("START TRANSACTION")

            def autocommit(self, value: bool) -> None:
                if not self._commons_outer:
                    super().autocommit(value)
                    return
                # autocommit on would commit the outer transaction: ignored inside a test

            def begin_outer(self) -> None:
                self._commons_outer = False
                super().rollback()
                self.query("START TRANSACTION")
                self.query(f"SAVEPOINT {OUTER_SAVEPOINT}")
                self._commons_outer = True

            def end_outer(self) -> None:
                self._commons_outer = False
                super().rollback()

        _ROLLBACK_CLASS = RollbackConnection
    return _ROLLBACK_CLASS


@pytest.fixture
def _mysql_tx_database(
    _mysql_databases: _Databases, _mysql_capture: tuple[str | None, _Capture | None]
) -> str:
    template, capture = _mysql_capture
    name = _mysql_databases.tx.get(template)
    if name is None:
        name = _mysql_databases.name(f"tx{len(_mysql_databases.tx) + 1}")
        _mysql_databases.create(name, template, capture)
        _mysql_databases.tx[template] = name
    return name


@pytest.fixture
def mysql_tx(
    _mysql_databases: _Databases, _mysql_tx_database: str
) -> Iterator[pymysql.connections.Connection[Any]]:
    """A PyMySQL connection inside a transaction that is rolled back after the test.

    Application code may call ``commit()``, ``rollback()`` and ``begin()`` (a savepoint stands
    in for them); nothing it writes survives the test. DDL (CREATE/ALTER/DROP/TRUNCATE) commits
    implicitly in MySQL and does survive: use :func:`mysql` for tests that change the schema.
    The database is made from :func:`mysql_template` once per worker and schema. Scope: function.
    Cost: ≈0.3 ms per test.
    """
    import pymysql

    def connect() -> Any:
        info = _mysql_databases.service.info.with_db(_mysql_tx_database)
        made = rollback_connection_class()(**info.connect_kwargs(autocommit=False))
        _mysql_databases.tx_conns[_mysql_tx_database] = made
        return made

    conn = _mysql_databases.tx_conns.get(_mysql_tx_database)
    if conn is None or not conn.open:
        conn = connect()
    try:
        conn.begin_outer()
    except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
        if not connection_lost(exc):
            raise
        with contextlib.suppress(Exception):  # the server restarted or crashed since
            conn.close()
        conn = connect()
        conn.begin_outer()
    yield conn
    if conn.open:
        conn.end_outer()
