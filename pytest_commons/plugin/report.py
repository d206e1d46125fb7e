"""When a test fails, it explains itself; what a test leaves open is reported; ``--keep-failed``.

* A failing test gets a ``commons: <service>`` report section for each service it used: backend
  and address (never a password), what the server logged while the test ran, and what the
  service's package says helps most (its ``META.report`` function: the database and how to
  connect, the topics and their record counts, MockServer's unmatched requests with the closest
  expectation and why it did not match). Passing tests get nothing, and pay one ``stat`` of
  each used service's log file.
* ``--keep-failed`` (ini ``keep_failed``, ``$PYTEST_COMMONS_KEEP_FAILED``): a failing test's
  database (Postgres, MySQL), keys (Redis), AWS account and topics (Kafka) are kept
  instead of dropped, and the servers are kept like ``--reuse-services`` keeps them, until
  ``pytest-commons down``.
* ``--commons-leaks=warn|fail|off`` (default warn): after each test, the connections it
  opened to its own database (Postgres ``pg_stat_activity``, MySQL's process list) or its
  Redis database (``CLIENT LIST``) and left open are reported.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_commons.plugin import options as _options

_options.register(
    _options.Option(
        "keep_failed",
        "Keep a failing test's database (Postgres, MySQL), keys (Redis), AWS resources and "
        "topics (Kafka) "
        "instead of dropping them; the report says how to connect. Servers are kept as with "
        "--reuse-services until `pytest-commons down`.",
        flag=True,
    )
)
_options.register(
    _options.Option(
        "commons_leaks",
        "What a test that leaves connections open to its own database or Redis database gets: "
        "warn (default; a CommonsLeakWarning), fail (an error in its teardown) or off.",
        default="warn",
        choices=("warn", "fail", "off"),
    )
)

#: lines of the server's log shown in a failing test's section
LOG_LINES = 30


class CommonsLeakWarning(UserWarning):
    """A test left connections open to its own database or Redis database."""


@dataclass(frozen=True)
class Leak:
    """One connection a test left open: the server's id for it and what else is known."""

    server_id: str
    detail: str
    client_port: int | None = None


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_MARKS = pytest.StashKey[dict[str, float]]()
_LEAKS = pytest.StashKey[str]()
_KEEP = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_LEAKS] = _options.get(config, "commons_leaks") or "warn"
    config.stash[_KEEP] = _options.get_flag(config, "keep_failed")


def leaks_on(item: pytest.Item) -> bool:
    """Whether connection leaks are looked for after ``item``: ``--commons-leaks`` is not
    ``off``, and the test uses no fault proxy (its proxies hold connections to the services
    until the ``faults`` fixture ends, after the services' own fixtures)."""
    if item.config.stash.get(_LEAKS, "warn") == "off":
        return False
    return "faults" not in getattr(item, "fixturenames", ())


def keep_failed_on(config: pytest.Config) -> bool:
    """Whether ``--keep-failed`` is on (it also keeps the servers, as ``--reuse-services``)."""
    return config.stash.get(_KEEP, False)


def failed(item: pytest.Item) -> bool:
    """Whether ``item``'s setup or call failed (read in its fixtures' teardown)."""
    reports = item.stash.get(_REPORTS, {})
    return any(r.failed for when, r in reports.items() if when in ("setup", "call"))


def keep(item: pytest.Item) -> bool:
    """Whether what ``item`` made is to be kept: ``--keep-failed`` and the test failed."""
    return keep_failed_on(item.config) and failed(item)


def _started(item: pytest.Item) -> list[tuple[str, Any]]:
    from pytest_commons.plugin.hooks import services_of
    from pytest_commons.plugin.state import REGISTRY_KEY

    registry = item.config.stash.get(REGISTRY_KEY, None)
    if registry is None:
        return []
    found = []
    for name in services_of(item):
        handle = registry.started(name)
        if handle is not None:
            found.append((name, handle))
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note where each started service's log is, so a failure shows what came after."""
    marks: dict[str, float] = {}
    for name, handle in _started(item):
        with contextlib.suppress(Exception):
            marks[name] = handle.log_mark()
    item.stash[_MARKS] = marks


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A service started by this test's setup: its log from here on (not its start)."""
    marks = item.stash.get(_MARKS, None)
    if marks is None:
        return
    for name, handle in _started(item):
        if name not in marks:
            with contextlib.suppress(Exception):
                marks[name] = handle.log_mark()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if report.failed and report.when in ("setup", "call"):
        with contextlib.suppress(Exception):  # a report must never fail the run
            report.sections.extend(failure_sections(item))
    return report


def failure_sections(item: pytest.Item) -> list[tuple[str, str]]:
    """The ``commons: <service>`` sections of a failing test (one per service it used)."""
    from pytest_commons.services import SERVICES

    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    kept = keep_failed_on(item.config)
    sections = []
    marks = item.stash.get(_MARKS, {})
    for name, shared in _started(item):
        # the test's own view when it has one (MockServer: this process's engine)
        handle = funcargs.get(f"{name}_service", shared)
        if shared.gone() is not None:
            continue  # the "is gone" section says it, with the log
        lines = [f"{name} ({handle.backend}, {handle.info.describe()}, {handle.version})"]
        describe = _describer(SERVICES[name].report)
        if describe is not None:
            try:
                lines += describe(handle, funcargs, kept)
            except Exception as exc:
                lines.append(f"(could not look: {type(exc).__name__}: {exc})")
        lines += _log_lines(handle, marks.get(name))
        sections.append((f"commons: {name}", "\n".join(lines)))
    return sections


def _describer(target: str) -> Callable[[Any, dict[str, Any], bool], list[str]] | None:
    if not target:
        return None
    module, _, attr = target.partition(":")
    found: Callable[[Any, dict[str, Any], bool], list[str]] = getattr(
        importlib.import_module(module), attr
    )
    return found


def _log_lines(handle: Any, mark: float | None) -> list[str]:
    where = handle.instance.log_path
    if handle.backend == "external":
        return ["server log: none (an external server's log is its operator's)"]
    if mark is None:  # started during this test's setup: the log's end
        text, what = handle.logs(), "the last lines of the server log"
    else:
        text, what = handle.logs_since(mark), "the server logged while the test ran"
    lines = text.rstrip().splitlines()[-LOG_LINES:]
    title = f"{what}" + (f" ({where})" if where else "") + ":"
    if not lines:
        return [f"{title} (nothing)"]
    return [title, *(f"  {line}" for line in lines)]


# -- leaks ----------------------------------------------------------------------------------


def report_leaks(item: pytest.Item, service: str, where: str, leaks: list[Leak]) -> None:
    """Say that ``item`` left ``leaks`` open on ``where`` (per ``--commons-leaks``)."""
    mode = item.config.stash.get(_LEAKS, "warn")
    if not leaks or mode == "off":
        return
    own = own_tcp_ports()
    lines = []
    for leak in leaks:
        whose = ""
        if leak.client_port is not None and own is not None:
            whose = (
                "; opened by this pytest process (its socket is still open here)"
                if leak.client_port in own
                else "; from another process"
            )
        lines.append(f"  {leak.server_id}: {leak.detail}{whose}")
    message = (
        f"{service}: {item.nodeid} left {len(leaks)} connection(s) open to {where}:\n"
        + "\n".join(lines)
        + "\n  remedy: close what the test opens (a with block, or a fixture that closes it "
        "at teardown); --commons-leaks=off silences this"
    )
    if mode == "fail":
        pytest.fail(message, pytrace=False)
    warnings.warn(CommonsLeakWarning(message), stacklevel=2)


def own_tcp_ports() -> set[int] | None:
    """Local ports of the TCP sockets this process holds open (None where /proc cannot say)."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return None
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(fd_dir):
            with contextlib.suppress(OSError):
                target = os.readlink(fd_dir / fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                if len(fields) > 9 and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def settle(look: Callable[[], list[Leak]], rounds: int = 20) -> list[Leak]:
    """``look()`` until it finds nothing or what it finds stops changing: a connection the
    client has just closed leaves the server's list a moment later (not a leak). A look that
    fails (the test stopped or restarted the server) finds nothing."""
    import time

    def look_safely() -> list[Leak]:
        try:
            return look()
        except Exception:
            return []

    found = look_safely()
    for _ in range(rounds):
        if not found:
            return found
        time.sleep(0.005)
        again = look_safely()
        if {leak.server_id for leak in again} == {leak.server_id for leak in found}:
            own = own_tcp_ports()
            # stable; our own closed sockets are gone from the process already
            if own is None or all(
                leak.client_port is None or leak.client_port in own for leak in again
            ):
                return again
        found = again
    return found
