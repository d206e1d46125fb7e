"""What a crashed run left behind: reap() and stale run directories.

Real processes stand in for servers (a real redis-server where it matters that a server, not
just a process, is stopped); records are written the way the backends write them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pytest_commons.backends.base import wait_ready
from pytest_commons.core.host import free_port
from pytest_commons.core.reaper import reap
from pytest_commons.core.run import (
    Instance,
    RunContext,
    process_start_time,
    runtime_root,
    stale_runs,
)
from pytest_commons.services.redis.spec import RedisInfo, RedisSpec

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("outer_services_settled")]


def _run_dir(root: Path, owner: str = "999999") -> RunContext:
    run_dir = root / f"run-{owner}-abcdef"
    (run_dir / "services").mkdir(parents=True)
    return RunContext(run_dir, 0, "master", 1)


def _redis_server(datadir: Path) -> tuple[subprocess.Popen[bytes], int]:
    datadir.mkdir(parents=True)
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        cwd=datadir,
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # like the local backend: the server leads its process group
    )
    wait_ready(RedisSpec(), "local", RedisInfo("127.0.0.1", port), timeout=30)
    return proc, port


def _start(pid: int) -> str:
    """The start time the backends record with a server's pid."""
    return process_start_time(pid) or ""


def _stopped(proc: subprocess.Popen[bytes], port: int) -> bool:
    """The server process ended (raises if it is still running after 10 s) and its port is shut."""
    proc.wait(timeout=10)
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_reap_stops_what_the_run_owned_and_nothing_else(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    run = _run_dir(tmp_path)
    datadir = run.run_dir / "redis" / "data"
    owned, port = _redis_server(datadir)
    kept = subprocess.Popen(["sleep", "600"], start_new_session=True)
    external = subprocess.Popen(["sleep", "600"], start_new_session=True)
    procs += [owned, kept, external]
    run.write(
        Instance(
            "redis",
            "local",
            pid=owned.pid,
            start_time=_start(owned.pid),
            ready=True,
            paths=[str(datadir.parent)],
        )
    )
    # --reuse-services keeps its servers on purpose; an external server is never ours to stop
    run.write(Instance("postgres", "local", pid=kept.pid, start_time=_start(kept.pid), reused=True))
    external_start = _start(external.pid)
    run.write(
        Instance("mysql", "external", pid=external.pid, start_time=external_start, owned=False)
    )
    # a record cut short by the crash, and a container that is already gone
    (run.services_dir / "kafka.json").write_text('{"service": "kafka", "back')
    run.write(Instance("aws", "docker", container_id="pytest-commons-reaper-test-no-such"))
    (run.run_dir / "docker-used").touch()

    reap(run.run_dir)

    assert _stopped(owned, port), "the server the run owned was stopped"
    assert not datadir.exists(), "its data directory went with it"
    assert kept.poll() is None, "a --reuse-services server stays up"
    assert external.poll() is None, "an external server is never touched"
    assert not run.run_dir.exists()


def test_stale_runs_are_those_whose_owner_is_gone(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    me, my_start = os.getpid(), process_start_time(os.getpid())

    def make(name: str, owner: str | None) -> Path:
        path = tmp_path / name
        (path / "services").mkdir(parents=True)
        if owner is not None:
            (path / "owner").write_text(owner)
        return path

    crashed = make(f"run-{dead.pid}-a", f"{dead.pid} 12345\n")
    make(f"run-{me}-b", f"{me} {my_start}\n")  # alive
    pid_reused = make(f"run-{me}-c", f"{me} 1\n")  # same pid, another process's start time
    make(f"run-{me}-d", f"{me} ?\n")  # recorded where /proc was unreadable
    half_made_old = make("run-1-e", None)
    old = time.time() - 3600
    os.utime(half_made_old, (old, old))
    make("run-1-f", None)  # its owner may be writing the owner file right now
    make("run-reuse", None)  # services kept by --reuse-services are no run's leftovers
    os.utime(tmp_path / "run-reuse", (old, old))

    found = set(stale_runs(tmp_path))

    assert found == {crashed, pid_reused, half_made_old}


def test_runtime_root_skips_a_directory_another_user_owns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run data must never land in a directory someone else prepared (and can read)."""
    squatted = tmp_path / "squatted"
    (squatted / f"pytest-commons-{os.getuid()}").mkdir(parents=True)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / f"pytest-commons-{os.getuid()}").write_text("not a directory")
    monkeypatch.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(blocked))
    assert not str(runtime_root()).startswith(str(blocked))
    if os.geteuid() != 0:
        pytest.skip("making a directory owned by another user needs root")
    os.chown(squatted / f"pytest-commons-{os.getuid()}", 65534, 65534)
    monkeypatch.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(squatted))
    root = runtime_root()
    assert not str(root).startswith(str(squatted))
    assert root.stat().st_uid == os.getuid()


STALE_TEST = "def test_nothing():\n    pass\n"


def test_a_new_run_reaps_what_a_crashed_run_left(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    runtime = pytester.path / "runtime"
    clean_env.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(runtime))
    root = runtime / f"pytest-commons-{os.getuid()}"
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    stale = _run_dir(root, owner=str(dead.pid))
    (stale.run_dir / "owner").write_text(f"{dead.pid} 12345\n")
    server, port = _redis_server(stale.run_dir / "redis" / "data")
    procs.append(server)
    stale.write(
        Instance(
            "redis",
            "local",
            pid=server.pid,
            start_time=_start(server.pid),
            ready=True,
            paths=[str(stale.run_dir)],
        )
    )

    pytester.makepyfile(STALE_TEST)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)

    assert _stopped(server, port), "the left-over server was stopped"
    assert not stale.run_dir.exists()


@pytest.mark.parametrize("recorded", ["another start time", "no start time"])
def test_stale_reaping_never_signals_a_pid_that_is_now_another_process(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    procs: list[subprocess.Popen[bytes]],
    recorded: str,
) -> None:
    """A persistent runtime dir, then a reboot or pid reuse: the recorded server pid now names
    an unrelated process. A plain ``pytest --co`` reaps the stale run and must not kill it."""
    runtime = pytester.path / "runtime"
    clean_env.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(runtime))
    root = runtime / f"pytest-commons-{os.getuid()}"
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    stale = _run_dir(root, owner=str(dead.pid))
    (stale.run_dir / "owner").write_text(f"{dead.pid} 12345\n")
    unrelated = subprocess.Popen(["sleep", "600"], start_new_session=True)
    procs.append(unrelated)
    start = "1" if recorded == "another start time" else ""
    assert _start(unrelated.pid) != "1"
    stale.write(Instance("redis", "local", pid=unrelated.pid, start_time=start, ready=True))

    pytester.makepyfile(STALE_TEST)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--co").assert_outcomes()

    assert not stale.run_dir.exists(), "the stale run was reaped"
    assert unrelated.poll() is None, "the unrelated process that now has the pid lives on"
