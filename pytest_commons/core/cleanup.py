"""Stopping what a run started, from its record alone (used by backends, the reaper and the CLI)."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import time

from pytest_commons.core.childenv import child_env
from pytest_commons.core.run import RUN_ENV, Instance, process_start_time

#: The Popen objects of the servers this process started, by pid. A child is reaped through
#: its Popen (``poll()``), so that the object knows its exit status: one reaped behind its back
#: (``os.waitpid``) warns "subprocess N is still running" when it is collected at exit.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def adopt(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Keep ``proc`` (a server this process started) until it is reaped."""
    CHILDREN[proc.pid] = proc
    return proc


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is an exited child of this process."""
    proc = CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _wait_gone(pid: int, deadline: float) -> None:
    """Wait until ``pid`` has exited (reaping it if it is our child) or the deadline passes.

    With a pidfd (Linux 5.3+) the wait ends the moment the process exits; elsewhere it polls.
    """
    proc = CHILDREN.get(pid)
    if proc is not None:
        # our child: wait through its Popen, which records the status. (Its /proc state says
        # "Z" as soon as the main thread ends, while other threads may still be exiting.)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(deadline - time.monotonic(), 0))
        reap(pid)
        return
    pidfd = None
    poller = select.poll()
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]
        poller.register(pidfd, select.POLLIN)
    try:
        delay = 0.002
        while _alive(pid) and time.monotonic() < deadline:
            if pidfd is not None:
                if poller.poll(max(deadline - time.monotonic(), 0) * 1000):
                    break  # readable: the process has exited
            else:
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            reap(pid)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def kill_process_group(pid: int, sig: int, grace: float = 3.0) -> None:
    """Send ``sig`` to the server's process group, then SIGKILL what is left after ``grace``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGCONT)  # a paused server cannot act on its stop signal
        os.killpg(pid, sig)
    _wait_gone(pid, time.monotonic() + grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    reap(pid)


def remove_container(container_id: str) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["docker", "rm", "-f", "-v", container_id],
            capture_output=True,
            timeout=30,
            check=False,
            env=child_env(),
        )


def is_same_process(pid: int, start_time: str, paths: list[str] | None = None) -> bool:
    """Whether ``pid`` is still the process that was recorded with ``start_time``.

    A pid that is gone, or one the kernel started at another moment (pid reuse, a reboot under
    a persistent runtime directory) is not ours to signal. A record without a start time
    (written by an older version) is trusted only while the process works in one of the
    record's ``paths`` (a local server's working directory is its data directory).
    """
    if not start_time or start_time in ("?", "None"):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return False
        return any(path and (cwd + "/").startswith(path.rstrip("/") + "/") for path in paths or ())
    current = process_start_time(pid)
    return current is not None and current == start_time


def stop_instance(instance: Instance, *, remove_paths: bool = True) -> None:
    """Stop a recorded instance the plugin owns; external ones are never touched."""
    if not instance.owned:
        return
    if instance.pid and is_same_process(instance.pid, instance.start_time, instance.paths):
        kill_process_group(instance.pid, instance.stop_signal)
    if instance.container_id:
        remove_container(instance.container_id)
    if remove_paths:
        for path in instance.paths:
            shutil.rmtree(path, ignore_errors=True)


def stop_all(instances: list[Instance]) -> None:
    """Stop several instances at once: the waits overlap instead of adding up."""
    owned = [inst for inst in instances if inst.owned and not inst.reused]
    if len(owned) <= 1:
        for inst in owned:
            with contextlib.suppress(Exception):
                stop_instance(inst)
        return
    import threading

    threads = [
        threading.Thread(target=stop_instance, args=(inst,), daemon=True, name="commons-stop")
        for inst in owned
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def run_containers(run_id: str) -> list[str]:
    """Ids of every container (running or not) labelled with this run's id; [] without Docker."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=pytest-commons.run={run_id}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=child_env(),
        ).stdout.split()
    return []


def sweep_run_containers(run_id: str) -> None:
    """Remove every container labelled with this run's id (also ones not yet recorded)."""
    found = run_containers(run_id)
    if found:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["docker", "rm", "-f", "-v", *found],
                capture_output=True,
                timeout=60,
                check=False,
                env=child_env(),
            )


def _of_run(pid: int, run_dir: str) -> bool:
    """Whether process ``pid`` belongs to the run at ``run_dir``: it carries the run's mark in
    its environment (the spawn guard does, from its first instruction), or it works in the run
    directory (a server's working directory is its data directory; a server that rewrites its
    process title, as redis-server and postgres do, also overwrites the environment that
    /proc shows)."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
    except OSError:
        cwd = ""
    if cwd == run_dir or cwd.startswith(run_dir.rstrip("/") + "/"):
        return True
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:  # gone, or another user's
        return False
    return f"{RUN_ENV}={run_dir}".encode() in environ.split(b"\0")


def run_processes(run_dir: str) -> list[int]:
    """Pids of every process of the run at ``run_dir`` (see ``_of_run``): its servers and
    their children, recorded or not."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            pid = int(entry.name) if entry.name.isdigit() else 0
            if pid and pid != os.getpid() and _of_run(pid, run_dir):
                found.append(pid)
    return found


def sweep_run_processes(run_dir: str) -> list[int]:
    """SIGKILL every process of the run (only for a run marked closing: nothing new starts).

    Each process is pinned by a pidfd before it is checked again, so a pid reused in between
    is never signalled. Returns the pids that were killed.
    """
    killed = []
    for pid in run_processes(run_dir):
        try:
            pidfd = os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]
        except (AttributeError, OSError):
            pidfd = None
        try:
            if not _of_run(pid, run_dir):
                continue
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)  # type: ignore[attr-defined,unused-ignore]
            else:
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except OSError:
            continue
        finally:
            if pidfd is not None:
                os.close(pidfd)
    for pid in killed:
        _wait_gone(pid, time.monotonic() + 5)
    return killed
