"""Redis fixtures: the session instance, a client on this worker's own database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.plugin.state import get_registry, service_handle

if TYPE_CHECKING:
    import redis as redis_py

    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.services.redis.spec import RedisInfo

__all__ = ["redis", "redis_db", "redis_service", "redis_url"]


@pytest.fixture(scope="session")
def redis_service(request: pytest.FixtureRequest) -> ServiceHandle[RedisInfo]:
    """The run's Redis instance: a handle with ``.info`` (host, port, password, ``.url``),
    ``.backend``, ``.version`` and fault injection (``stop/start/restart/pause/resume``).

    Scope: session, one server shared by all xdist workers. Cost: local start ≈20 ms (begun in
    the background after collection).
    """
    return service_handle(request, "redis")


@pytest.fixture(scope="session")
def redis_db(
    request: pytest.FixtureRequest, redis_service: ServiceHandle[RedisInfo]
) -> Iterator[RedisInfo]:
    """Connection info for the database index this worker owns.

    On a server the plugin started for this run, worker N owns index N. On an external server,
    or one kept by ``--reuse-services`` (which other runs may use at the same time), the worker
    claims an index (never 0) that was empty, recording the claim as a key
    ``pytest-commons:claim:<index>`` in database 0, so flushing it never touches anyone else's
    keys. A heartbeat renews the claim while the run lives; claims of runs proved dead are
    taken over (their leftovers flushed); at the end the database is emptied and the claim
    deleted, only if it is still ours. Scope: session. Cost: a few commands.
    """
    from pytest_commons.services.redis.spec import LOCAL_DATABASES, RedisSpec

    ctx = get_registry(request.config).ctx
    spec = redis_service.spec
    assert isinstance(spec, RedisSpec)
    if redis_service.owned and not redis_service.instance.reused:
        if ctx.worker_index >= LOCAL_DATABASES:
            pytest.fail(
                f"redis: worker {ctx.worker_id} has no database index "
                f"(the local server has {LOCAL_DATABASES})",
                pytrace=False,
            )
        info = redis_service.info.with_db(ctx.worker_index)
        yield info
        return
    # an external server, or one kept by --reuse-services that other runs use at the same time
    claim = spec.claim_database(redis_service.info, f"{ctx.run_id}:{ctx.worker_id}")
    claim.start_heartbeat()
    try:
        yield claim.info
    finally:
        spec.release_database(claim)


class _Emptier:
    """Empties this worker's database around each test that uses it, and lists the database's
    connections as the test starts, on a connection of its own.

    After the test a FLUSHDB is sent and its reply is read only as the next such test sets up:
    the round trip overlaps pytest's reporting in between instead of delaying the next test.
    The first test (and any after a failed send) flushes synchronously, so every test still
    starts on an empty database. The list of connections the leak check compares with is asked
    for the same way: sent as the test starts, read when it ends.
    """

    def __init__(self, client: redis_py.Redis) -> None:
        self.client = client
        self.conn: Any = None  # a redis-py connection (its methods are untyped)
        self.in_flight = False
        self.listing = False

    def before_test(self) -> None:
        from redis.exceptions import RedisError

        if self.in_flight:
            self.in_flight = False
            try:
                self.conn.read_response()
                return
            except (RedisError, OSError):
                self._drop()
        self.client.flushdb()

    def ask_connections(self) -> bool:
        """Send CLIENT LIST; :meth:`connections` reads its reply. False if it could not be sent
        (the server is down: no leak check for this test)."""
        from redis.exceptions import RedisError

        try:
            self._connect()
            self.conn.send_command("CLIENT", "LIST", "TYPE", "normal")
            self.listing = True
        except (RedisError, OSError):
            self._drop()
        return self.listing

    def connections(self, db: int) -> dict[str, dict[str, str]] | None:
        """The reply to :meth:`ask_connections`: the connections on ``db`` as the test started
        (None if it could not be read: the test stopped or restarted the server)."""
        from redis.exceptions import RedisError

        if not self.listing:
            return None
        self.listing = False
        try:
            return _parse_client_list(self.conn.read_response(), db)
        except (RedisError, OSError):
            self._drop()
            return None

    def after_test(self) -> None:
        from redis.exceptions import RedisError

        try:
            if self.listing:  # the test ended before its teardown read the list
                self.connections(0)
            self._connect()
            self.conn.send_command("FLUSHDB")
            self.in_flight = True
        except (RedisError, OSError):
            self._drop()  # the next test flushes synchronously

    def _connect(self) -> None:
        if self.conn is None:
            self.conn = self.client.connection_pool.make_connection()

    def close(self) -> None:
        if self.in_flight or self.listing:
            with contextlib.suppress(Exception):
                self.conn.read_response()
        self._drop()

    def _drop(self) -> None:
        self.in_flight = self.listing = False
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.disconnect()
            self.conn = None


@pytest.fixture(scope="session")
def _redis_client(
    redis_service: ServiceHandle[RedisInfo], redis_db: RedisInfo
) -> Iterator[tuple[redis_py.Redis, _Emptier]]:
    from pytest_commons.services.redis.spec import RedisSpec

    spec = redis_service.spec
    assert isinstance(spec, RedisSpec)
    client = spec.client(redis_db)
    emptier = _Emptier(client)
    yield client, emptier
    emptier.close()
    client.close()


@pytest.fixture
def _redis_empty(
    request: pytest.FixtureRequest,
    redis_db: RedisInfo,
    _redis_client: tuple[redis_py.Redis, _Emptier],
) -> Iterator[redis_py.Redis]:
    from pytest_commons.plugin import report

    client, emptier = _redis_client
    emptier.before_test()
    # the connections as the test starts: asked for now, the reply read as it ends
    look = report.leaks_on(request.node) and emptier.ask_connections()
    yield client
    leaks = []
    before = emptier.connections(redis_db.db) if look else None
    if before is not None:
        leaks = report.settle(lambda: _leaks(client, redis_db.db, before))
    if report.keep(request.node):
        _keep(request, client, redis_db)
    emptier.after_test()
    report.report_leaks(request.node, "redis", f"its database {redis_db.db}", leaks)


def _keep(request: pytest.FixtureRequest, client: redis_py.Redis, redis_db: RedisInfo) -> None:
    """--keep-failed: the failing test's keys go to the database index its report named (or,
    when the report could not look, one reserved now)."""
    import warnings

    from pytest_commons.services.redis.spec import RedisSpec

    spec = request.getfixturevalue("redis_service").spec
    assert isinstance(spec, RedisSpec)
    index = getattr(client, "commons_kept_index", None)
    try:
        if index is None:
            index = spec.reserve_kept(redis_db, request.node.nodeid)
        spec.keep_database(redis_db, index)
    except Exception as exc:  # no free index, SWAPDB refused: the failure stands alone
        warnings.warn(
            f"redis: --keep-failed could not keep the keys of {request.node.nodeid}: {exc}",
            stacklevel=2,
        )
    finally:
        client.commons_kept_index = None  # type: ignore[attr-defined]


def _parse_client_list(reply: bytes | str, db: int) -> dict[str, dict[str, str]]:
    """CLIENT LIST's reply (a line per connection, ``key=value`` fields separated by spaces,
    no space in a value), only the connections on database ``db``, by id."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    mark = f" db={db} "
    found = {}
    for line in text.splitlines():
        if mark in line:
            entry = dict(field.partition("=")[::2] for field in line.split(" ") if field)
            found[entry.get("id", "")] = entry
    return found


def _connections(client: redis_py.Redis, db: int) -> dict[str, dict[str, str]]:
    """The server's client connections on database ``db``, by id."""
    reply = client.execute_command("CLIENT LIST TYPE normal")  # type: ignore[no-untyped-call]
    return _parse_client_list(reply, db)


def _leaks(client: redis_py.Redis, db: int, before: dict[str, dict[str, str]]) -> list[Any]:
    """The connections on ``db`` opened since ``before`` was taken and still open, the
    plugin's own (named ``pytest-commons``) excepted."""
    from pytest_commons.plugin.report import Leak
    from pytest_commons.services.redis.spec import OWN_CLIENT_NAME, OWN_PORTS

    leaks = []
    for ident, entry in _connections(client, db).items():
        port = str(entry.get("addr", "")).rpartition(":")[2]
        if ident in before or entry.get("name") == OWN_CLIENT_NAME:
            continue
        if port.isdigit() and int(port) in OWN_PORTS:
            continue  # the plugin's own, renamed by the test
        leaks.append(
            Leak(
                f"client id {ident}",
                f"from {entry.get('addr')}, name {entry.get('name') or '-'}, idle "
                f"{entry.get('idle')} s, last command {entry.get('cmd')}",
                int(port) if port.isdigit() else None,
            )
        )
    return leaks


@pytest.fixture
def redis_url(redis_db: RedisInfo, _redis_empty: redis_py.Redis) -> str:
    """``redis://…/N`` for this worker's database, emptied for this test: a ``str`` whose
    ``repr`` masks the password (tracebacks with ``-l``, junit XML), the full URL as its value.

    Scope: function. Cost: one FLUSHDB, its round trip overlapped with the previous test's
    teardown (≈0.1 ms).
    """
    return redis_db.url


@pytest.fixture
def redis(_redis_empty: redis_py.Redis) -> redis_py.Redis:
    """A redis-py client on this worker's own database, emptied for this test.

    Scope: function (the client and its pool are reused across tests). Cost: one FLUSHDB, its
    round trip overlapped with the previous test's teardown.
    """
    return _redis_empty
