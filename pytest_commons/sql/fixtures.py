"""``sql_db``: one test, several relational databases, through SQLAlchemy (sync and async).

``@pytest.mark.backends("postgres", "mysql", "sqlite")`` parametrizes ``sql_db`` (ids
``test_x[postgres]``); ``--db-backends`` narrows the set. A test using ``sql_db`` without the
marker runs on all three. Each backend's database is made once per worker and holds what
``sql_schema`` returns; every test runs inside a transaction that is rolled back.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.plugin import options as _options
from pytest_commons.plugin.state import get_registry

if TYPE_CHECKING:
    from pytest_commons.sql import SqlBackend, SqlDatabase, SqlSchema

__all__ = ["sql_db", "sql_schema"]

RELATIONAL_BACKENDS = ("postgres", "mysql", "sqlite")  # == pytest_commons.sql's, kept light
SERVICE_BACKENDS = ("postgres", "mysql")
BACKENDS_MARKER = (
    "backends(*names): run the test once per relational backend (postgres, mysql, sqlite) "
    "through the sql_db fixture; --db-backends narrows the set."
)
_ENABLED_KEY = pytest.StashKey[tuple[str, ...]]()
NO_BACKEND = "no-backend"


def _parse_names(text: str, where: str) -> tuple[str, ...]:
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    _check_names(names, where)
    return names


def _check_names(names: tuple[str, ...], where: str) -> None:
    bad = [name for name in names if name not in RELATIONAL_BACKENDS]
    if bad:
        raise pytest.UsageError(
            f"{where}: unknown relational backend(s) {', '.join(map(repr, bad))}; "
            f"choose from {', '.join(RELATIONAL_BACKENDS)}"
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", BACKENDS_MARKER)
    raw = _options.get(config, "db_backends")
    enabled: tuple[str, ...] = RELATIONAL_BACKENDS
    if raw:
        enabled = _parse_names(
            str(raw), "--db-backends (ini db_backends, $PYTEST_COMMONS_DB_BACKENDS)"
        )
        if not enabled:
            raise pytest.UsageError("--db-backends: give at least one of postgres, mysql, sqlite")
    config.stash[_ENABLED_KEY] = enabled


def _already_parametrized(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if "sql_db" in argnames:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sql_db" not in metafunc.fixturenames or _already_parametrized(metafunc):
        return
    marker = metafunc.definition.get_closest_marker("backends")
    wanted: tuple[str, ...] = RELATIONAL_BACKENDS
    if marker is not None:
        wanted = tuple(str(name).lower() for name in marker.args)
        if not wanted:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: @pytest.mark.backends() needs at least one of "
                f"{', '.join(RELATIONAL_BACKENDS)}"
            )
        _check_names(wanted, f"{metafunc.definition.nodeid}: @pytest.mark.backends")
    enabled = metafunc.config.stash.get(_ENABLED_KEY, RELATIONAL_BACKENDS)
    chosen = [name for name in wanted if name in enabled]
    if chosen:
        metafunc.parametrize("sql_db", chosen, indirect=True, ids=chosen)
    else:
        reason = (
            f"sql_db: none of this test's backends ({', '.join(wanted)}) is enabled by "
            f"--db-backends={','.join(enabled)}"
        )
        metafunc.parametrize(
            "sql_db",
            [pytest.param(None, marks=pytest.mark.skip(reason=reason), id=NO_BACKEND)],
            indirect=True,
        )


def _item_backend(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("sql_db") if callspec is not None else None
    return backend if isinstance(backend, str) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # sql_db is parametrized indirectly, so <svc>_service is not in the test's fixture names
    # and the core does not see it: mark the test here (-m postgres / -m "not mysql")
    for item in items:
        backend = _item_backend(item)
        if backend in SERVICE_BACKENDS:
            item.add_marker(backend)


def _service_installed(name: str) -> bool:
    return importlib.util.find_spec(f"pytest_commons.services.{name}") is not None


def pytest_collection_finish(session: pytest.Session) -> None:
    # start the servers the collected sql_db tests need in the background, as the core does
    # for tests that use <svc>_service directly
    config = session.config
    if config.option.collectonly:
        return
    needed = sorted({b for b in map(_item_backend, session.items) if b in SERVICE_BACKENDS})
    needed = [name for name in needed if _service_installed(name)]
    if needed:
        with contextlib.suppress(pytest.UsageError):
            get_registry(config).prestart(needed)


@pytest.fixture(scope="session")
def sql_schema() -> SqlSchema:
    """Override to create your schema once per backend per worker, in the database every
    ``sql_db`` test starts from. A module or directory that overrides it gets a database of
    its own, made the first time one of its tests runs.

    Return SQLAlchemy ``MetaData`` (``create_all``), an Alembic ``Config`` or the path of an
    ``alembic.ini`` (``upgrade head``), or None (an empty database). Scope: session. Cost: runs
    once per backend per xdist worker.
    """
    return None


def _sql_import() -> Any:
    try:
        import pytest_commons.sql as sql
    except ImportError as exc:
        pytest.fail(
            f"sql_db needs SQLAlchemy and the drivers ({exc}): "
            'pip install "pytest-commons[sql,postgres,mysql]"',
            pytrace=False,
        )
    return sql


def _prefix(config: pytest.Config) -> str:
    ctx = get_registry(config).ctx
    return ctx.db_prefix


class _PerSchema:
    """One backend kind's databases, one per distinct ``sql_schema`` value: a module or
    directory may override the session-scoped hook, and its tests must get its schema (the
    same rule as ``postgres_template``). ``make(suffix)`` gives an empty database's
    backend; the schema is applied here. Made on first use, closed with the session."""

    def __init__(
        self,
        make: Callable[[str, str | None], contextlib.AbstractContextManager[SqlBackend]],
        kept: Callable[[SqlSchema], str | None] | None = None,
    ):
        self._make = make
        self._kept = kept  # a template the schema is already in, kept across runs (postgres)
        self._stack = contextlib.ExitStack()
        self._made: dict[object, SqlBackend] = {}  # schema key (as postgres_template's)

    def get(self, schema: SqlSchema) -> SqlBackend:
        from pytest_commons.sql.pool import schema_key

        key = schema_key(schema)
        found = self._made.get(key)
        if found is None:
            suffix = str(len(self._made)) if self._made else ""
            template = self._kept(schema) if self._kept is not None else None
            with contextlib.ExitStack() as one:  # undone at once if the schema fails
                found = one.enter_context(self._make(suffix, template))
                one.callback(found.close)  # before what made it is undone
                if template is None:
                    _sql_import().apply_schema(found.engine, found.url, schema)
                self._stack.push(one.pop_all())
            self._made[key] = found
        return found

    def __enter__(self) -> _PerSchema:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def _sql_backend_postgres(request: pytest.FixtureRequest) -> Iterator[_PerSchema]:
    sql = _sql_import()
    dbs = request.getfixturevalue("_postgres_databases")

    def urls(name: str) -> tuple[str, str]:
        info = dbs.service.info.with_db(name)
        parts = {
            "host": info.host,
            "port": info.port,
            "user": info.user,
            "password": info.password,
            "database": name,
        }
        return (
            sql.sqlalchemy_url("postgres", **parts),
            sql.sqlalchemy_url("postgres", asynchronous=True, **parts),
        )

    @contextlib.contextmanager
    def make(suffix: str, template: str | None) -> Iterator[SqlBackend]:
        name = dbs.name(f"sql{suffix}")
        dbs.create(name, template=template)
        backend: SqlBackend = sql.SqlBackend("postgres", *urls(name))
        yield backend  # the postgres fixtures' bookkeeping drops it at the end of the session

    def kept(schema: SqlSchema) -> str | None:
        """On a server kept across runs: the schema's template, migrated by the first run
        only (keyed by the migration files' or the tables' content)."""
        fingerprint = sql.schema_fingerprint(schema, "postgres") if dbs.kept_server else None
        if fingerprint is None:
            return None

        def fill(name: str) -> None:
            url = urls(name)[0]
            engine = sql.make_engine("postgres", url)
            try:
                sql.apply_schema(engine, url, schema)
            finally:
                engine.dispose()

        result: str = dbs.kept_template(fingerprint, fill)
        return result

    with _PerSchema(make, kept) as per_schema:
        yield per_schema


@pytest.fixture(scope="session")
def _sql_backend_mysql(request: pytest.FixtureRequest) -> Iterator[_PerSchema]:
    sql = _sql_import()
    if not _service_installed("mysql"):
        pytest.skip("sql_db[mysql]: this pytest-commons has no MySQL service module")
    dbs = request.getfixturevalue("_mysql_databases")

    @contextlib.contextmanager
    def make(suffix: str, template: str | None) -> Iterator[SqlBackend]:
        from pytest_commons.services.mysql.spec import quote_ident

        name = dbs.name(f"sql{suffix}")
        dbs.create(name)
        dbs.run(f"ALTER DATABASE {quote_ident(name)} CHARACTER SET utf8mb4")
        info = dbs.service.info
        kwargs = {"host": info.host, "port": info.port, "user": info.user}
        kwargs["password"] = info.password or ""
        backend: SqlBackend = sql.SqlBackend(
            "mysql",
            sql.sqlalchemy_url("mysql", database=name, **kwargs),
            sql.sqlalchemy_url("mysql", database=name, asynchronous=True, **kwargs),
        )
        yield backend  # the mysql fixtures' bookkeeping drops it at the end of the session

    with _PerSchema(make) as per_schema:
        yield per_schema


@pytest.fixture(scope="session")
def _sql_backend_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_PerSchema]:
    sql = _sql_import()
    folder: Path = tmp_path_factory.mktemp("commons-sql")

    @contextlib.contextmanager
    def make(suffix: str, template: str | None) -> Iterator[SqlBackend]:
        path = folder / f"sql{suffix}.db"
        backend: SqlBackend = sql.SqlBackend(
            "sqlite",
            sql.sqlalchemy_url("sqlite", database=str(path)),
            sql.sqlalchemy_url("sqlite", database=str(path), asynchronous=True),
        )
        yield backend

    with _PerSchema(make) as per_schema:
        yield per_schema


def _async_runner(request: pytest.FixtureRequest) -> Any:
    """The event loop pytest-asyncio will run this test in, or None for a sync test.

    Requesting pytest-asyncio's runner fixture here (before the test asks for it) also makes
    it outlive ``sql_db``, so the async rollback runs in a loop that is still open.
    """
    scope = getattr(request.node, "_loop_scope", None)
    if scope is None:
        return None
    try:
        runner = request.getfixturevalue(f"_{scope}_scoped_runner")
    except pytest.FixtureLookupError:
        return None
    return runner.get_loop()


@pytest.fixture
def sql_db(request: pytest.FixtureRequest) -> Iterator[SqlDatabase]:
    """A SQLAlchemy database on one relational backend, rolled back after the test.

    Parametrized by ``@pytest.mark.backends("postgres", "mysql", "sqlite")`` (default: all
    three; ``--db-backends`` narrows). Gives ``.backend``, ``.url``, ``.engine``,
    ``.connection``, ``.session``, ``.sessionmaker`` and, in pytest-asyncio tests,
    ``.async_connection``, ``.async_session``, ``.async_sessionmaker``, ``.async_engine``.
    ``session.commit()`` releases a savepoint: nothing the test writes survives it.

    Scope: function. Cost: a BEGIN/ROLLBACK on a connection kept per worker (≈1 ms); asyncio
    tests also open one async connection (a few ms) in the test's event loop.
    """
    backend_name = getattr(request, "param", None)
    if backend_name is None:
        raise pytest.UsageError(
            "sql_db is parametrized by the pytest-commons plugin; it was not here "
            "(was it requested with getfixturevalue?)"
        )
    # the schema this test sees (a module may override the hook), then its database
    schema: SqlSchema = request.getfixturevalue("sql_schema")
    backend = request.getfixturevalue(f"_sql_backend_{backend_name}").get(schema)
    sql = _sql_import()
    loop = _async_runner(request)
    database: SqlDatabase = sql.SqlDatabase(
        backend, sql.run_in_loop(loop) if loop is not None else None
    )
    try:
        yield database
    finally:
        database.close()
