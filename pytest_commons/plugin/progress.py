"""Progress notices (a service starting, an image being pulled) for the person at the terminal.

They are written to the terminal pytest started on, never into a test's captured output: the
plugin points :data:`sink` at a duplicate of file descriptor 2 taken in ``pytest_configure``,
before any capture, so a notice from a fixture or a background start thread reaches the
terminal even while pytest captures fd 2. Under xdist that descriptor is the worker's stderr,
which is the controller's terminal. Without the plugin (a library use), notices go to
``sys.stderr``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

_lock = threading.Lock()
_fd: int | None = None
_users = 0  # pytest sessions in this process (pytester runs one inside another)


def attach_terminal() -> None:
    """Take a duplicate of fd 2 for notices (``pytest_configure``: nothing captures it yet)."""
    global _fd, _users
    with _lock:
        _users += 1
        if _fd is None:
            with contextlib.suppress(OSError):
                _fd = os.dup(2)


def detach_terminal() -> None:
    global _fd, _users
    with _lock:
        _users = max(0, _users - 1)
        if _users or _fd is None:
            return
        fd, _fd = _fd, None
        with contextlib.suppress(OSError):
            os.close(fd)


def notice(message: str) -> None:
    """Write one line of progress to the terminal (see the module docstring)."""
    line = message.rstrip("\n") + "\n"
    with _lock:
        if _fd is not None:
            with contextlib.suppress(OSError):
                os.write(_fd, line.encode(errors="replace"))
                return
    print(line, end="", file=sys.stderr, flush=True)
