"""Stopping a server's process group: the wait ends when the process exits, never hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_commons.core import cleanup as _cleanup
from pytest_commons.core import reaper as _reaper
from pytest_commons.core.cleanup import kill_process_group
from pytest_commons.core.run import Instance, RunContext, process_start_time

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


@pytest.mark.usefixtures("wait_mode")
def test_a_server_this_process_started_is_reaped_through_its_popen() -> None:
    # reaped behind its Popen's back (os.waitpid), the object would keep returncode None and
    # warn "subprocess N is still running" when collected at exit: every run under -W error
    proc = _cleanup.adopt(subprocess.Popen(["sleep", "600"], start_new_session=True))
    kill_process_group(proc.pid, signal.SIGTERM, grace=30)
    assert proc.returncode == -signal.SIGTERM
    assert proc.pid not in _cleanup.CHILDREN


def test_a_run_under_dev_mode_ends_without_popen_warnings(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_a(redis):\n    redis.ping()\n")
    argv = [sys.executable, "-X", "dev", "-m", "pytest", "-p", "no:cacheprovider", "-W", "error"]
    for _ in range(3):  # the exit races the server's threads: one clean run could be luck
        result = subprocess.run(
            [*argv, "-p", "no:asyncio", "--redis-backend=local"],
            cwd=pytester.path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "still running" not in result.stderr, result.stderr


def test_an_already_gone_process_returns_at_once() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait()
    started = time.monotonic()
    _cleanup.kill_process_group(proc.pid, signal.SIGTERM, grace=30)
    assert time.monotonic() - started < 5


# stop_instance / stop_all / reap: which records are stopped, which kept (mutation-found gaps) --
def _server() -> tuple[subprocess.Popen[bytes], Instance]:
    """A real process standing in for a local server, and its record."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    start = process_start_time(proc.pid) or ""
    return proc, Instance(service="redis", backend="local", pid=proc.pid, start_time=start)


def _ended(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None or _gone(proc.pid)


@pytest.mark.parametrize("count", [1, 3])
def test_stop_all_stops_the_runs_servers_and_keeps_the_kept_ones(
    procs: list[subprocess.Popen[bytes]], count: int
) -> None:
    """One server (stopped in line) and several (stopped in threads, joined before return);
    a server kept by --reuse-services and one the run does not own survive."""
    stopped, records = [], []
    for _ in range(count):
        proc, inst = _server()
        procs.append(proc)
        stopped.append(proc)
        records.append(inst)
    kept, kept_inst = _server()
    kept_inst.reused = True
    foreign, foreign_inst = _server()
    foreign_inst.owned = False
    procs.extend([kept, foreign])
    _cleanup.stop_all([*records, kept_inst, foreign_inst])
    assert all(_ended(proc) for proc in stopped), "stop_all returned before its servers ended"
    assert kept.poll() is None
    assert foreign.poll() is None


def test_stop_instance_removes_its_paths_unless_told_not_to(tmp_path: Path) -> None:
    data, gone_already = tmp_path / "data", tmp_path / "never-made"
    data.mkdir()
    inst = Instance(service="redis", backend="local", paths=[str(gone_already), str(data)])
    _cleanup.stop_instance(inst, remove_paths=False)
    assert data.exists()
    _cleanup.stop_instance(inst)  # a path that is already gone is no error
    assert not data.exists()


def test_reap_goes_past_unreadable_and_kept_records(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Records are read in name order: an unreadable one (a directory: OSError; bad JSON:
    ValueError) and a kept one come first, and the server recorded after them is still
    stopped; the kept one survives; the run directory is removed."""
    run = RunContext(tmp_path / "run-1-abc", 0, "master", 1)
    services = run.run_dir / "services"
    services.mkdir(parents=True)
    (services / "a0.json").mkdir()
    (services / "a1.json").write_text("{not json")
    kept, kept_inst = _server()
    kept_inst.service, kept_inst.reused = "b-kept", True
    last, last_inst = _server()
    last_inst.service = "c-last"
    procs.extend([kept, last])
    run.write(kept_inst)
    run.write(last_inst)
    _reaper.reap(run.run_dir)
    last.wait(timeout=30)
    assert kept.poll() is None
    assert not run.run_dir.exists()


def test_the_python_watcher_takes_its_arguments_with_or_without_the_flag(tmp_path: Path) -> None:
    """``--watch PID DIR`` and ``PID DIR``: a run directory that is gone ends the watch."""
    absent = tmp_path / "run-ended"
    assert _reaper.main(["--watch", str(os.getpid()), str(absent)]) == 0
    assert _reaper.main([str(os.getpid()), str(absent)]) == 0


def test_stop_instance_leaves_a_pid_that_is_another_process_now(
    procs: list[subprocess.Popen[bytes]],
) -> None:
    """A record whose start time does not match the pid's (pid reuse, a reboot): no signal."""
    proc, inst = _server()
    procs.append(proc)
    inst.start_time = "1"  # the kernel started this pid at another moment
    _cleanup.stop_instance(inst)
    assert proc.poll() is None
    assert not _gone(proc.pid)


def test_every_child_process_of_the_package_gets_its_environment_explicitly() -> None:
    """Without ``env=`` a child execs with the C environ, shared with the parent until the
    exec (vfork), while pytest's main thread sets and removes PYTEST_CURRENT_TEST: a server
    start in a background thread failed with "[Errno 14] Bad address" (a full run, an inner
    MySQL start's mariadb-tzinfo-to-sql). Every subprocess call in the package passes one."""
    import ast

    package = Path(_cleanup.__file__).resolve().parent.parent
    missing = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "subprocess"
                and node.func.attr in ("run", "Popen", "call", "check_call", "check_output")
                and not any(k.arg == "env" for k in node.keywords)
            ):
                missing.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    assert missing == []


def test_a_child_env_copy_survives_another_thread_changing_the_environment() -> None:
    # the mechanism, on this machine: with the copy no exec fails while another thread sets and
    # removes variables as pytest does (without it, 892 of 3,000 failed with EFAULT here)
    import threading

    from pytest_commons.core.childenv import child_env

    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            os.environ["PC_CHURN"] = "x" * (n % 50)
            n += 1
            os.environ.pop("PC_CHURN", None)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            subprocess.run(["true"], check=True, env=child_env())
    finally:
        stop.set()
        thread.join()
