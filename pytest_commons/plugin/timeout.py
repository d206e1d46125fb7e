"""Hang protection: an opt-in time limit for tests that use services, whose failure says what the
services were doing when it fired.

``--commons-timeout=SECONDS`` (ini ``commons_timeout``, ``$PYTEST_COMMONS_COMMONS_TIMEOUT``;
``@pytest.mark.commons_timeout(SECONDS)`` per test; 0 or unset: off) limits each of setup, call
and teardown of every test that uses a service (a service's own start is not counted: that is
``--service-start-timeout``'s). When the limit passes, the test fails with, for
each service it uses: PostgreSQL's ``pg_stat_activity`` and the locks waited for (with who
holds them), MySQL's process list, Redis's ``CLIENT LIST``, MockServer's recorded requests. Each
look is made on a connection of its own with a 2 s timeout.

The limit is a ``SIGALRM`` timer in the main thread (POSIX; elsewhere, and off the main
thread, the option does nothing). With pytest-timeout installed and configured for a test
(``--timeout``, ini ``timeout`` or ``@pytest.mark.timeout``), pytest-timeout owns that test and
this limit is not armed — one timeout fires, never two.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from pytest_commons.plugin import options as _options

_options.register(
    _options.Option(
        "commons_timeout",
        "Seconds a test that uses services may take (setup, call and teardown) before it fails "
        "with what the services were doing: pg_stat_activity and locks, MySQL processes, Redis "
        "CLIENT LIST, MockServer requests (default 0: off; pytest-timeout, when configured "
        "for a test, takes precedence).",
        default="0",
    )
)

PROBE_TIMEOUT = 2


class CommonsTimeout(pytest.fail.Exception):  # type: ignore[name-defined,misc]
    """The test's time limit passed."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "commons_timeout(seconds): time limit for this test (overrides --commons-timeout)",
    )
    # resolved once (a bad value is a usage error now); per test only the marker is looked at
    config.stash[_DEFAULT] = _seconds_of(_options.get(config, "commons_timeout"))


_DEFAULT = pytest.StashKey[float]()
_ITEM = pytest.StashKey[float]()


def _limit(item: pytest.Item) -> float:
    marker = item.get_closest_marker("commons_timeout")
    if marker and marker.args:
        return _seconds_of(marker.args[0])
    return item.config.stash.get(_DEFAULT, 0.0)


def _seconds_of(raw: object) -> float:
    try:
        seconds = float(raw or 0)  # type: ignore[arg-type]
    except ValueError:
        raise pytest.UsageError(
            f"pytest-commons: commons_timeout={raw!r} is not a number of seconds (set by "
            "--commons-timeout, $PYTEST_COMMONS_COMMONS_TIMEOUT, ini commons_timeout or the "
            "commons_timeout marker)"
        ) from None
    return max(seconds, 0.0)


def _pytest_timeout_owns(item: pytest.Item) -> bool:
    """Whether pytest-timeout will time this test (so we must not fire as well)."""
    pm = item.config.pluginmanager
    if not (pm.hasplugin("timeout") or pm.hasplugin("pytest_timeout")):  # entry point, or -p
        return False
    if item.get_closest_marker("timeout") is not None:
        return True
    value: Any = item.config.getoption("timeout", default=None)
    if value is None:
        with contextlib.suppress(ValueError):
            value = item.config.getini("timeout")
    try:
        return float(value or 0) > 0
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def _armed(item: pytest.Item, seconds: float, phase: str) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise CommonsTimeout(
            f"commons: the test's {phase} took longer than {seconds:g} s (--commons-timeout)\n"
            + describe_services(item),
            pytrace=True,
        )

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _seconds(item: pytest.Item) -> float:
    """This test's limit, or 0 when it is not limited by us (worked out once per test)."""
    cached = item.stash.get(_ITEM, None)
    if cached is not None:
        return cached
    item.stash[_ITEM] = seconds = _work_out(item)
    return seconds


def _work_out(item: pytest.Item) -> float:
    from pytest_commons.plugin.hooks import services_of

    if not services_of(item):  # the limit is for tests that use a service: others pay nothing
        return 0.0
    seconds = _limit(item)
    if (
        seconds <= 0
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
        or _pytest_timeout_owns(item)
    ):
        return 0.0
    return seconds


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None]:
    seconds = _seconds(item)
    if not seconds:
        return (yield)
    # a service's start is limited by --service-start-timeout (and says so with its log), not
    # by this limit: wait for the services first
    from pytest_commons.plugin.hooks import services_of
    from pytest_commons.plugin.state import get_registry

    registry = get_registry(item.config)
    for svc in services_of(item):
        with contextlib.suppress(Exception):  # the fixture reports it in its own words
            registry.get(svc)
    with _armed(item, seconds, "setup"):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None]:
    seconds = _seconds(item)
    if not seconds:
        return (yield)
    with _armed(item, seconds, "call"):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    seconds = _seconds(item)
    if not seconds:
        return (yield)
    with _armed(item, seconds, "teardown"):
        return (yield)


def describe_services(item: pytest.Item) -> str:
    """What each service this test uses is doing right now (one block per service)."""
    from pytest_commons.plugin.hooks import services_of

    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    blocks = []
    for svc in services_of(item):
        handle = funcargs.get(f"{svc}_service")
        look = _LOOKS.get(svc)
        if handle is None or look is None:
            continue
        try:
            text = look(handle)
        except Exception as exc:  # the server itself may be what hangs
            text = f"(could not look: {type(exc).__name__}: {exc})"
        body = "\n".join(f"    {line}" for line in text.splitlines()) or "    (nothing)"
        blocks.append(f"  {svc} ({handle.backend}, {handle.info.describe()}):\n{body}")
    return "what the services were doing:\n" + "\n".join(blocks) if blocks else ""


def _table(header: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [header, *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [min(60, max(len(row[i]) for row in cells)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell[:60].ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _postgres(handle: Any) -> str:
    import psycopg

    info = handle.info
    with psycopg.connect(info.dsn, connect_timeout=PROBE_TIMEOUT, autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = {PROBE_TIMEOUT * 1000}")
        activity = conn.execute(
            "SELECT pid, datname, state, wait_event_type || ':' || wait_event, "
            "round(extract(epoch FROM now() - query_start)::numeric, 2), "
            "pg_blocking_pids(pid), left(regexp_replace(query, '\\s+', ' ', 'g'), 120) "
            "FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname IS NOT NULL "
            "AND state IS DISTINCT FROM 'idle' ORDER BY query_start"
        ).fetchall()
        locks = conn.execute(
            "SELECT pid, locktype, mode, coalesce(relation::regclass::text, transactionid::text) "
            "FROM pg_locks WHERE NOT granted"
        ).fetchall()
    text = "pg_stat_activity (not idle):\n" + _table(
        ["pid", "database", "state", "waiting on", "seconds", "blocked by", "query"], activity
    )
    text += "\nlocks waited for:\n" + (
        _table(["pid", "type", "mode", "object"], locks) if locks else "(none)"
    )
    return text


def _mysql(handle: Any) -> str:
    import pymysql

    info = handle.info
    conn = pymysql.connect(**info.connect_kwargs(connect_timeout=PROBE_TIMEOUT, database=None))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id, db, command, time, state, left(info, 120) "
                "FROM information_schema.processlist WHERE id <> CONNECTION_ID() "
                "AND command <> 'Sleep'"
            )
            rows = list(cur.fetchall())
    finally:
        conn.close()
    return "processlist (not sleeping):\n" + _table(
        ["id", "db", "command", "seconds", "state", "query"], rows
    )


def _redis(handle: Any) -> str:
    client = handle.spec.client(handle.info, timeout=PROBE_TIMEOUT)
    try:
        clients = client.client_list()
    finally:
        client.close()
    rows = [
        (c.get("id"), c.get("db"), c.get("age"), c.get("idle"), c.get("cmd"), c.get("name"))
        for c in clients
        if c.get("cmd") != "client|list"
    ]
    return "CLIENT LIST:\n" + _table(["id", "db", "age", "idle", "last command", "name"], rows)


def _mockserver(handle: Any) -> str:
    import httpx

    info = handle.info
    response = httpx.put(
        f"{info.url}/mockserver/retrieve",
        params={"type": "REQUESTS", "format": "JSON"},
        timeout=PROBE_TIMEOUT,
    )
    requests = response.json() if response.content else []
    rows = [(r.get("method"), r.get("path"), len(str(r.get("body", "")))) for r in requests[-20:]]
    return f"recorded requests ({len(requests)}, the last 20):\n" + _table(
        ["method", "path", "body size"], rows
    )


def _kafka(handle: Any) -> str:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {"bootstrap.servers": handle.info.bootstrap_servers, "socket.timeout.ms": 2000}
    )
    listed = admin.list_consumer_groups(request_timeout=PROBE_TIMEOUT).result(PROBE_TIMEOUT)
    rows: list[tuple[Any, ...]] = []
    ids = sorted(group.group_id for group in listed.valid)
    if ids:
        described = admin.describe_consumer_groups(ids, request_timeout=PROBE_TIMEOUT)
        for group_id in ids:
            try:
                group = described[group_id].result(PROBE_TIMEOUT)
            except Exception as exc:
                rows.append((group_id, f"? ({type(exc).__name__})", "", ""))
                continue
            state = getattr(group.state, "name", group.state)
            members = group.members or []
            topics = sorted(
                {tp.topic for m in members for tp in (m.assignment.topic_partitions or [])}
            )
            rows.append((group_id, state, len(members), ", ".join(topics)))
    return "consumer groups:\n" + (
        _table(["group", "state", "members", "assigned topics"], rows) if rows else "(none)"
    )


_LOOKS: dict[str, Callable[[Any], str]] = {
    "kafka": _kafka,
    "postgres": _postgres,
    "mysql": _mysql,
    "redis": _redis,
    "mockserver": _mockserver,
}
