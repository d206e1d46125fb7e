"""The run's file lock: threads and processes exclude each other; a dead holder frees it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pytest_commons.core.lock import FileLock


def test_threads_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    inside: list[int] = []
    overlaps: list[int] = []
    gate = threading.Barrier(4)

    def work(n: int) -> None:
        gate.wait()
        for _ in range(50):
            with FileLock(path):
                inside.append(n)
                if len(inside) > 1:
                    overlaps.append(n)
                inside.remove(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert overlaps == []


def test_reentrant_for_the_holder_and_strict_on_release(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "x.lock")
    with lock:
        with lock:
            assert lock.is_locked
        assert lock.is_locked
    assert not lock.is_locked
    with pytest.raises(RuntimeError, match="release of an unheld lock"):
        lock.release()


def test_another_process_waits_and_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pytest_commons.core.lock import FileLock\n"
            f"with FileLock({str(path)!r}):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        probe = [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
            "try:\n"
            "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "except BlockingIOError:\n"
            "    sys.exit(3)\n",
        ]
        assert subprocess.run(probe, check=False).returncode == 3, "held by the other process"
        holder.kill()
        holder.wait(timeout=30)
        with FileLock(path):  # the kernel released the dead holder's lock
            assert subprocess.run(probe, check=False).returncode == 3
    finally:
        holder.kill()
        holder.wait(timeout=30)
        holder.stdout.close()  # type: ignore[union-attr]  # a pipe left open warns (-W error)
