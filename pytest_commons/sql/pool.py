"""The database pool the relational services share (PostgreSQL, MySQL/MariaDB, and ``sql_db``
on both): one per worker and server.

What it does the same way for every engine: the names (``<run prefix>_<n>``, so that a run
creates and drops only its own), the per-schema templates (one per distinct schema value,
made once per worker; a schema that failed fails every later test that needs it with the
first error), dropping used databases in a background thread during the run, and at the end
dropping what is left. What differs is the engine's (:class:`DatabasePool`'s abstract
methods): how to connect, whether a connection is still usable, how to create a database, how
owners are stamped on a shared server.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import pytest

if TYPE_CHECKING:
    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.plugin.report import Leak

__all__ = [
    "Database",
    "DatabasePool",
    "database_lines",
    "databases_of",
    "remember_schema_error",
    "schema_failed_before",
    "schema_fingerprint",
    "schema_key",
]

T = TypeVar("T")


def schema_key(schema: object) -> object:
    """What tells schemas apart for the per-schema templates (postgres, mysql, sql_db)."""
    if isinstance(schema, Path):
        return ("path", str(schema.resolve()), schema.stat().st_mtime_ns)
    if schema is None or isinstance(schema, str):
        return schema
    return (
        "callable",
        getattr(schema, "__module__", ""),
        getattr(schema, "__qualname__", ""),
        id(schema),
    )


def schema_fingerprint(schema: object) -> str | None:
    """A key of the schema's content that holds across runs (for the templates kept on a
    server kept by ``--reuse-services``): SQL text, a file's bytes, a callable's own source
    code (or its ``commons_key`` attribute, e.g. a migration head and the migration files'
    hash), an Alembic config's migration files. None when the content cannot be told (a
    callable without source): its template is then made every run."""
    import hashlib
    import inspect

    if schema is None:
        return None
    digest = hashlib.sha256()
    if isinstance(schema, str):
        digest.update(b"sql\0" + schema.encode())
    elif isinstance(schema, Path):
        try:
            digest.update(b"file\0" + schema.read_bytes())
        except OSError:
            return None
    elif isinstance(getattr(schema, "commons_key", None), str):
        digest.update(b"key\0" + schema.commons_key.encode())  # type: ignore[attr-defined]
    elif callable(schema):
        try:
            source = inspect.getsource(schema)
        except (OSError, TypeError):
            return None
        name = f"{getattr(schema, '__module__', '')}.{getattr(schema, '__qualname__', '')}"
        digest.update(b"callable\0" + name.encode() + b"\0" + source.encode())
    else:
        return None
    return digest.hexdigest()[:24]


def schema_failed_before(what: str, errors: dict[object, str], key: object) -> None:
    """Fail this test with the original error when its schema already failed in this worker
    (postgres_template, mysql_template): every test that needs it shows why."""
    if key in errors:
        message = f"{what} failed (in an earlier test of this worker): {errors[key]}"
        pytest.fail(message, pytrace=False)


@contextlib.contextmanager
def remember_schema_error(
    errors: dict[object, str], key: object, undo: Callable[[], None]
) -> Iterator[None]:
    """Record how applying a schema failed (the error then propagates: the first test shows
    its traceback) and ``undo`` the half-made template."""
    try:
        yield
    except Exception as exc:
        errors[key] = f"{type(exc).__name__}: {exc}".strip()
        with contextlib.suppress(Exception):
            undo()
        raise


class Database:
    """One test's own database on a relational server: ``.name``, ``.info`` (connection info of
    that database), ``.url``; the connections a test opens through it are closed after it."""

    def __init__(self, service: ServiceHandle[Any], name: str) -> None:
        self.service = service
        self.name = name
        self.info: Any = service.info.with_db(name)
        self._connections: list[Any] = []

    @property
    def url(self) -> str:
        """URL of this database (contains the password, if any)."""
        return str(self.info.url)

    def _track(self, conn: T) -> T:
        self._connections.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._connections:
            with contextlib.suppress(Exception):
                conn.close()
        self._connections.clear()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.info.describe()}>"


def databases_of(funcargs: dict[str, Any], service: str) -> list[Database]:
    """The per-test databases of ``service`` among a test's fixture values (for reports)."""
    return [
        value
        for value in funcargs.values()
        if isinstance(value, Database) and value.service.service == service
    ]


def database_lines(
    funcargs: dict[str, Any], service: str, kept: bool, connect: Callable[[str, str], str]
) -> list[str]:
    """A failing test's report lines for its databases of ``service``: each name, whether it
    is kept (``--keep-failed``), and ``connect(name, password_hint)``'s command line."""
    if kept:
        state = "kept (--keep-failed): DROP DATABASE it when done, or `pytest-commons down`"
        hint = " (the password: `pytest-commons list --show-passwords`)"
    else:
        state = "dropped after the test (--keep-failed keeps it)"
        hint = f" (the password: {service}_service.info.password)"
    lines = []
    for database in databases_of(funcargs, service):
        lines.append(f"database {database.name}: {state}")
        lines.append(f"  connect: {connect(database.name, hint)}")
    return lines


class DatabasePool(ABC, Generic[T]):
    """This worker's databases on one server: names, per-schema templates (``T``: what a
    template is for the engine), dropping in the background, the final sweep."""

    #: the service's name (``postgres``): thread names, messages
    service_name: ClassVar[str]
    #: the option whose value is the schema (``postgres_schema``), for messages
    schema_option: ClassVar[str]

    def __init__(self, spec: Any, service: ServiceHandle[Any], prefix: str) -> None:
        self.spec, self.service, self.prefix = spec, service, prefix
        self._counter = itertools.count(1)
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._dropper: threading.Thread | None = None
        self.created: set[str] = set()
        self.templates: dict[object, T] = {}  # schema key -> the engine's template
        self.schema_errors: dict[object, str] = {}  # schema key -> how it failed
        # a server other runs use too (external, or kept by --reuse-services): databases are
        # stamped with their owner, and those of owners proved dead are dropped
        self.shared = not service.owned or service.instance.reused
        #: a server kept across runs (--reuse-services): schema templates are kept on it too
        self.kept_server = service.owned and service.instance.reused
        self.rebuild_kept = False  # --create-db: build the kept templates again (once a run)
        self.run_id = ""
        self.admin: Any = self.connect_admin()

    @classmethod
    def for_session(
        cls, request: pytest.FixtureRequest, service: ServiceHandle[Any]
    ) -> Iterator[Any]:
        """The body of a session fixture: this worker's pool on ``service``, closed at the end."""
        from pytest_commons.plugin.options import get_flag
        from pytest_commons.plugin.state import get_registry

        registry = get_registry(request.config)
        pool = cls(service.spec, service, registry.ctx.db_prefix)
        pool.run_id = registry.ctx.run_id
        pool.rebuild_kept = get_flag(request.config, "create_db")
        try:
            yield pool
        finally:
            pool.close()

    # the engine's part ----------------------------------------------------------------------
    @abstractmethod
    def connect_admin(self) -> Any:
        """A new autocommit connection to the server (no database of ours)."""

    @abstractmethod
    def usable(self, conn: Any) -> bool:
        """Whether ``conn`` may still run a statement (not closed, not broken)."""

    def drop_connection(self) -> Any:
        """The connection the background dropper uses (the admin's kind by default)."""
        return self.connect_admin()

    def before_close(self) -> None:
        """Stop the engine's own helpers (threads, kept connections) before the final sweep."""

    def ensure_admin(self) -> None:
        """Connect the admin session again if it was lost (the server restarted)."""
        if not self.usable(self.admin):
            self.admin = self.connect_admin()

    def after_sweep(self) -> None:
        """What the engine does once its databases are dropped (remove its owner stamp)."""

    def leaks(self, name: str) -> list[Leak]:
        """The connections open to database ``name`` now, the admin's own excepted."""
        return []

    def mark_kept(self, name: str, nodeid: str) -> None:
        """Record on the server that ``name`` is kept for ``nodeid`` (``--keep-failed``), so no
        later run's sweep of dead runs' databases drops it."""

    # shared ---------------------------------------------------------------------------------
    def name(self, suffix: str | None = None) -> str:
        return f"{self.prefix}_{suffix or next(self._counter)}"

    def template_name(self) -> str:
        """A name for the next template database (``…_tpl<n>``)."""
        return self.name(f"tpl{len(self.templates) + len(self.schema_errors) + 1}")

    def template(self, schema: object, build: Callable[[object], T]) -> T:
        """The template for ``schema``: made by ``build(key)`` the first time this worker sees
        it (a failure is remembered and fails the later tests that need it), then reused."""
        key = schema_key(schema)
        if key in self.templates:
            return self.templates[key]
        schema_failed_before(self.schema_option, self.schema_errors, key)
        made = build(key)
        self.templates[key] = made
        return made

    def finish(self, item: pytest.Item, database: Database) -> None:
        """The end of a test's own database: close what the fixture opened, report the
        connections the test left open (``--commons-leaks``), then keep the database
        (``--keep-failed`` and the test failed) or drop it in the background."""
        from pytest_commons.plugin import report

        database.close()
        name = database.name
        leaks = report.settle(lambda: self.leaks(name)) if report.leaks_on(item) else []
        if report.keep(item):
            self.created.discard(name)
            with contextlib.suppress(Exception):
                self.mark_kept(name, item.nodeid)
        else:
            self.drop_later(name)
        report.report_leaks(item, self.service_name, f"its database {name}", leaks)

    def drop_later(self, name: str) -> None:
        if self._dropper is None:
            self._dropper = threading.Thread(
                target=self._drop_loop, name=f"commons-{self.service_name}-drop", daemon=True
            )
            self._dropper.start()
        self._drops.put(name)

    def _drop_loop(self) -> None:
        conn = None
        while (name := self._drops.get()) is not None:
            with contextlib.suppress(Exception):
                if conn is None or not self.usable(conn):
                    conn = self.drop_connection()
                self.spec.drop_database(conn, name)
                self.created.discard(name)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """End of the session: stop the helpers, then drop every database this worker made.

        Not on a server this run started for itself alone (not external, not kept by
        ``--reuse-services`` or ``--keep-failed``): it is stopped next and its data directory
        removed, its databases with it, so dropping them first is time spent for nothing."""
        throwaway = not self.shared
        self.before_close()
        if self._dropper is not None:
            if throwaway:  # what is still queued goes with the server
                with contextlib.suppress(queue.Empty):
                    while True:
                        self._drops.get_nowait()
            self._drops.put(None)
            self._dropper.join(timeout=60)
        if throwaway:
            with contextlib.suppress(Exception):
                self.admin.close()
            return
        with contextlib.suppress(Exception):
            self.ensure_admin()
            for name in list(self.created):
                self.spec.drop_database(self.admin, name)
            self.after_sweep()
        with contextlib.suppress(Exception):
            self.admin.close()
