"""Stopping a server's process group: the wait ends when the process exits, never hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pytest_commons import _cleanup
from pytest_commons._cleanup import kill_process_group

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"  # noqa: E501


def _spawn(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"  # the handler is installed
    return proc


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(params=["pidfd", "polling"])
def wait_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with the pidfd wait and with the polling fallback."""
    if request.param == "polling":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd_open here")
    return str(request.param)


@pytest.mark.usefixtures("wait_mode")
def test_stop_returns_as_the_process_exits_and_reaps_it() -> None:
    proc = _spawn("import time; print('up', flush=True); time.sleep(60)")
    started = time.monotonic()
    kill_process_group(proc.pid, signal.SIGTERM, grace=30)
    assert time.monotonic() - started < 10  # ended by the exit, not by the 30 s grace
    assert _gone(proc.pid)  # reaped: no zombie left behind
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


@pytest.mark.usefixtures("wait_mode")
def test_a_process_ignoring_the_signal_is_killed_after_the_grace() -> None:
    proc = _spawn(IGNORES_TERM)
    started = time.monotonic()
    kill_process_group(proc.pid, signal.SIGTERM, grace=0.3)
    assert time.monotonic() - started >= 0.3
    # it would sleep 60 s: ending within 10 s means the SIGKILL landed (the exit status may
    # already have been reaped by kill_process_group, so Popen cannot always report -9; and
    # asking whether the pid is gone after wait() would prove nothing: wait() reaps it)
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()


def test_an_already_gone_process_returns_at_once() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait()
    started = time.monotonic()
    _cleanup.kill_process_group(proc.pid, signal.SIGTERM, grace=30)
    assert time.monotonic() - started < 5
