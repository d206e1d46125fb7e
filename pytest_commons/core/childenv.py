"""The environment a child process gets: always passed explicitly (``env=child_env()``).

Without ``env=``, :mod:`subprocess` lets the child read the C ``environ`` while it execs, and on
Linux the child shares the parent's memory until then (``vfork``). pytest's main thread sets and
removes ``PYTEST_CURRENT_TEST`` at every test phase, so a server start in a background thread
failed now and then with ``[Errno 14] Bad address`` (``EFAULT``) on the exec: 892 of 3,000 runs
of ``/bin/true`` with another thread changing the environment, 0 of 3,000 with ``env=`` (a copy
made by the parent before the fork).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["child_env"]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of this process's environment as of now, with ``extra`` on top."""
    while True:
        try:
            env = dict(os.environ)
            break
        except KeyError:  # a variable removed by another thread while copying: copy again
            continue
    if extra:
        env.update(extra)
    return env
