"""A pytest plugin that records when the phases of a pytest-commons Postgres run happen.

Loaded by ``benchmarks/core/timeline.py`` with ``-p timeline_plugin`` (before the commons plugin);
nothing in pytest-commons knows about it. It wraps, from outside, the functions a phase is made
of (the server's start, the template, taking a database, cloning ahead, connecting, dropping, the
session's end) and pytest's own hooks, and writes ``(label, thread, start, end)`` intervals in
``time.time()`` seconds to ``$TIMELINE_OUT`` (JSON) when the interpreter exits.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

IMPORTED = time.time()
EVENTS: list[tuple[str, str, float, float]] = []


def _record(label: str, start: float, end: float) -> None:
    EVENTS.append((label, threading.current_thread().name, start, end))


def _wrap(owner: Any, attr: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, attr)
    if getattr(original, "_timeline", False):
        return

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            _record(label, start, time.time())

    timed._timeline = True  # type: ignore[attr-defined]
    setattr(owner, attr, timed)


def _patch() -> None:
    from pytest_commons.backends import local
    from pytest_commons.core import cleanup, registry, run
    from pytest_commons.plugin import hooks
    from pytest_commons.services.postgres import fixtures, spec
    from pytest_commons.sql import pool

    _wrap(registry.Registry, "_acquire", "server: acquire (start or attach)")
    _wrap(local.LocalBackend, "start", "server: local start (all)")
    _wrap(spec.PostgresSpec, "local_prepare", "server: copy cached cluster")
    _wrap(local.LocalBackend, "_wait", "server: spawn → ready")
    _wrap(local.LocalBackend, "_secure", "server: set password")
    _wrap(fixtures._Databases, "connect_admin", "connect admin")
    _wrap(fixtures._Databases, "take", "take (wait for clone)")
    _wrap(fixtures._Databases, "_make_ahead", "clone ahead (thread)")
    _wrap(fixtures._Databases, "create", "clone now")
    _wrap(fixtures._Databases, "before_close", "session end: pool helpers stop")
    _wrap(spec.PostgresSpec, "drop_database", "drop database")
    _wrap(spec.PostgresSpec, "create_database", "CREATE DATABASE")
    _wrap(fixtures.PostgresDatabase, "connect", "test: connect")
    _wrap(fixtures.PostgresDatabase, "close", "test: close connections")
    _wrap(pool.DatabasePool, "close", "session end: pool close (all)")
    _wrap(hooks, "_stop_services", "session end: stop services (all)")
    _wrap(cleanup, "stop_all", "session end: stop server")
    _wrap(registry.Registry, "shutdown", "session end: registry shutdown")
    _wrap(registry, "load_spec", "server: load spec")
    _wrap(run.RunContext, "ensure_reaper", "server: start the reaper")
    _wrap(run.RunContext, "write", "server: write instance record")
    _wrap(local.LocalBackend, "unavailable", "server: local backend available?")
    _wrap(local.LocalBackend, "_spawn", "server: spawn")
    _wrap(cleanup, "kill_process_group", "session end: signal server, wait for exit")
    _wrap(run.RunContext, "destroy", "session end: remove run dir")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _record("configure (first hook)", time.time(), time.time())
    _patch()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _record("sessionstart (last hook)", time.time(), time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[None]:
    start = time.time()
    yield
    _record("collection", start, time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    start = time.time()
    yield
    _record("test: setup", start, time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    start = time.time()
    yield
    _record("test: call", start, time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    start = time.time()
    yield
    _record("test: teardown", start, time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    start = time.time()
    yield
    _record("test: whole protocol", start, time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    start = time.time()
    yield
    _record("sessionfinish (incl. session fixtures' teardown)", start, time.time())


@pytest.hookimpl(hookwrapper=True)
def pytest_unconfigure(config: pytest.Config) -> Iterator[None]:
    start = time.time()
    yield
    _record("unconfigure", start, time.time())
    # the atexit handlers run last-registered first: this one marks their beginning
    atexit.register(lambda: _record("atexit handlers begin", time.time(), time.time()))


def _write() -> None:
    out = os.environ.get("TIMELINE_OUT")
    if out:
        with open(out, "w") as fh:
            json.dump({"imported": IMPORTED, "exit": time.time(), "events": EVENTS}, fh)


atexit.register(_write)
