"""Both reaper watchers: the shell loop (where /proc exists) and the Python one (elsewhere).

A real process stands in for a server: it is recorded in a run directory like a server the
local backend started, its "owner" is killed with SIGKILL, and the watcher must stop it and
remove the run directory; when the run ends in order (directory removed) it must just exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_commons.core.run import _WATCH_SH, Instance, RunContext, process_start_time


def _watch_cmd(kind: str, owner: int, run_dir: Path) -> list[str]:
    if kind == "sh":
        return [
            "/bin/sh",
            "-c",
            _WATCH_SH,
            "commons-reaper",
            str(owner),
            str(run_dir),
            sys.executable,
        ]
    return [sys.executable, "-m", "pytest_commons.core.reaper", "--watch", str(owner), str(run_dir)]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _sleeping(pid: int) -> bool:
    """True when ``pid``, or a child of it (the shell loop's ``sleep 0.2``), sits in the
    loop's sleep: the watcher has looked at the owner at least once and decided to go on."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid):
            pids.append(int(stat.parent.name))
    for candidate in pids:
        try:
            if "nanosleep" in Path(f"/proc/{candidate}/wchan").read_text():
                return True
        except OSError:
            continue
    return False


def _wait_until_it_has_looked(watcher: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not _sleeping(watcher.pid):
        assert watcher.poll() is None, "the watcher exited while the owner is alive"
        assert time.monotonic() < deadline, "the watcher never reached its sleep"
        time.sleep(0.01)


@pytest.fixture
def run(tmp_path: Path) -> RunContext:
    run_dir = tmp_path / "run-1-abc"
    (run_dir / "services").mkdir(parents=True)
    return RunContext(run_dir, 0, "master", 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="the shell watcher needs /proc")
@pytest.mark.parametrize("kind", ["sh", "python"])
def test_owner_killed_server_stopped_and_run_dir_removed(run: RunContext, kind: str) -> None:
    server = subprocess.Popen(["sleep", "600"], start_new_session=True)
    owner = subprocess.Popen(["sleep", "600"])
    watcher = subprocess.Popen(_watch_cmd(kind, owner.pid, run.run_dir))
    try:
        # a record carries the server's start time: without one the reaper does not signal
        # the pid (it may be another process by now); the test stands in for a real record
        started = process_start_time(server.pid) or ""
        run.write(
            Instance(
                service="redis", backend="local", pid=server.pid, ready=True, start_time=started
            )
        )
        owner.kill()
        owner.wait(timeout=10)  # reaped: its pid is gone, as when pytest dies
        assert watcher.wait(timeout=30) == 0
        server.wait(timeout=10)  # the watcher killed the recorded "server"
        assert server.returncode == -signal.SIGTERM
        assert not run.run_dir.exists()
    finally:
        for proc in (server, owner, watcher):
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.skipif(not os.path.exists("/proc/self/wchan"), reason="needs /proc/PID/wchan")
@pytest.mark.parametrize("kind", ["sh", "python"])
def test_run_ending_in_order_leaves_servers_to_the_run(run: RunContext, kind: str) -> None:
    server = subprocess.Popen(["sleep", "600"], start_new_session=True)
    watcher = subprocess.Popen(_watch_cmd(kind, os.getpid(), run.run_dir))
    try:
        run.write(Instance(service="redis", backend="local", pid=server.pid, ready=True))
        _wait_until_it_has_looked(watcher)  # a look at a live owner, then its sleep
        assert watcher.poll() is None, "the owner is alive: the watcher keeps watching"
        assert server.poll() is None
        assert run.run_dir.exists()
        run.destroy()
        assert watcher.wait(timeout=30) == 0
        assert server.poll() is None, "an orderly end is the run's to clean up, not the reaper's"
    finally:
        for proc in (server, watcher):
            proc.kill()
            proc.wait(timeout=10)


def test_ensure_reaper_starts_one_watcher_per_run(run: RunContext) -> None:
    owner = subprocess.Popen(["sleep", "600"])
    ctx = RunContext(run.run_dir, owner.pid, "master", 1)
    try:
        ctx.ensure_reaper()
        ctx.ensure_reaper()
        pid = int((run.run_dir / "reaper.pid").read_text())
        assert not _gone(pid)
        owner.kill()
        owner.wait(timeout=10)
        deadline = time.monotonic() + 30
        while run.run_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not run.run_dir.exists(), "the reaper removed the dead owner's run directory"
    finally:
        owner.kill()
        owner.wait(timeout=10)
