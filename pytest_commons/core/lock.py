"""An inter-process lock on a file: ``fcntl.flock`` on a descriptor of its own.

Each ``with`` opens the file anew, so two threads of one process exclude each other as two
processes do; the kernel drops the lock when its holder dies (kill -9 included), so a lock is
never stale. Where there is no ``fcntl`` (Windows), the ``filelock`` package (a dependency)
locks instead; it is imported only there (its imports cost ≈10 ms per pytest start), and
``fcntl`` is imported on the first lock, not with the plugin.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any


def _fcntl() -> Any:
    """The ``fcntl`` module, or None where the platform has none."""
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


def portable_lock_module() -> Any:
    """The ``filelock`` module, for platforms without ``fcntl``.

    The plugin imports it in ``pytest_configure`` (main thread) on such platforms: off Windows
    filelock warns on import that only its soft lock is left — the lock this platform has — and
    the filter that silences it must not race the per-test warning filters of the main thread.
    """
    import sys

    module = sys.modules.get("filelock")
    if module is not None:
        return module
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "only soft file lock", UserWarning)
        import filelock
    return filelock


def prepare() -> None:
    """Import what locking needs here, now (see :func:`portable_lock_module`)."""
    if _fcntl() is None:
        portable_lock_module()


class FileLock:
    """``with FileLock(path): ...`` holds an exclusive lock on ``path`` (created if missing).

    Re-entrant for the thread that holds it (a nested ``with`` on the same object just counts);
    other threads and processes wait.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()

    @property
    def is_locked(self) -> bool:
        """Whether the calling thread holds this lock."""
        return getattr(self._local, "depth", 0) > 0

    def acquire(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            return
        fcntl = _fcntl()
        if fcntl is None:
            filelock = portable_lock_module()
            # thread_local=False: this object counts re-entry per thread itself
            portable = filelock.FileLock(self.path, thread_local=False)
            portable.acquire()
            self._local.fd, self._local.depth = portable, 1
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._local.fd, self._local.depth = fd, 1

    def release(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            raise RuntimeError(f"release of an unheld lock on {self.path}")
        self._local.depth = depth - 1
        if depth == 1:
            fd, self._local.fd = self._local.fd, None
            if not isinstance(fd, int):  # a filelock.FileLock (no fcntl here)
                fd.release()
                return
            fcntl = _fcntl()
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
