"""Process and file helpers that backends and services share: free ports, the user servers run
as, ownership of a data directory, cached init directories, finding a binary.

Neutral: nothing here imports a backend or a service, so both import from here and no import
runs back up the layers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from pytest_commons.core.childenv import child_env
from pytest_commons.core.lock import FileLock
from pytest_commons.core.run import runtime_root
from pytest_commons.errors import BackendUnavailable

__all__ = [
    "MANIFEST",
    "cache_intact",
    "cached_build",
    "chown_tree",
    "copy_datadir",
    "free_port",
    "keep_newest",
    "make_spare",
    "server_user",
    "spare_path",
    "take_spare",
    "which_any",
]

#: where the ready copies of cached data directories wait for the next run (runtime root)
SPARES = "spares"


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (callers retry if a server loses the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_user(preferred: str | None = None) -> tuple[int, int] | None:
    """(uid, gid) that servers run as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    import pwd  # POSIX only: imported here, so the module loads everywhere

    for name in ([preferred] if preferred else []) + ["postgres", "nobody"]:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            if name == preferred:
                raise BackendUnavailable(
                    f"server user {preferred!r} does not exist",
                    "set --commons-server-user to an existing unprivileged user",
                ) from None
            continue
        return entry.pw_uid, entry.pw_gid
    raise BackendUnavailable(
        "running as root and no unprivileged user (postgres, nobody) exists",
        "set --commons-server-user",
    )


def chown_tree(path: Path, user: tuple[int, int] | None) -> None:
    if user is None:
        return
    uid, gid = user
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), uid, gid)


MANIFEST = ".commons-manifest"  # written last into a cache: every file's path and size


def _manifest(root: Path) -> str:
    lines: list[str] = []
    stack = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                elif rel != MANIFEST:
                    lines.append(f"{rel}\t{entry.stat(follow_symlinks=False).st_size}")
    return "\n".join(sorted(lines)) + "\n"


def cache_intact(cache: Path) -> bool:
    """Whether ``cache`` is complete: its manifest exists and every file it lists is there
    with its size (a cache cut short, or damaged afterwards, is rebuilt)."""
    try:
        return (cache / MANIFEST).read_text() == _manifest(cache)
    except OSError:
        return False


def cached_build(cache: Path, ready: Callable[[Path], bool], build: Callable[[Path], None]) -> Path:
    """Build ``cache`` once (initdb, install-db …) and reuse it across runs.

    ``build(work)`` fills ``work``, a path in the private runtime directory (the server user may
    not reach a cache in a home directory); the result is copied into ``cache`` under a file
    lock and renamed into place, so concurrent runs never see half a cache. A cache whose
    manifest does not match its files is removed and built again.
    """
    if ready(cache) and cache_intact(cache):
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache) + ".lock"):
        if ready(cache) and cache_intact(cache):
            return cache
        if cache.exists():  # damaged or from an older version: build it again
            shutil.rmtree(cache, ignore_errors=True)
        work = runtime_root() / f"{cache.parent.name}-init-{cache.name}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            build(work)
            tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            subprocess.run(
                ["cp", "-a", str(work), str(tmp)],
                check=True,
                capture_output=True,
                timeout=120,
                env=child_env(),
            )
            (tmp / MANIFEST).write_text(_manifest(tmp))
            os.rename(tmp, cache)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return cache


def copy_datadir(cache: Path, datadir: Path, user: tuple[int, int] | None) -> None:
    """Copy a cached, initialised data directory into a run's private 0700 data directory."""
    subprocess.run(
        ["cp", "-a", f"{cache}/.", str(datadir)],
        check=True,
        capture_output=True,
        timeout=120,
        env=child_env(),
    )
    if user is not None:
        os.chown(datadir, *user)
    os.chmod(datadir, 0o700)


def spare_path(cache: Path) -> Path:
    """Where the spare copy of ``cache`` waits: in the runtime root, the run directories'
    file system, so taking it is a rename."""
    return runtime_root() / SPARES / f"{cache.parent.name}-{cache.name}"


def take_spare(cache: Path, datadir: Path, user: tuple[int, int] | None) -> bool:
    """Move the spare copy of ``cache`` (made by :func:`make_spare` during an earlier run) into
    the empty ``datadir``: a rename instead of a copy (≈50-90 ms for Postgres' 28 MB). False
    when there is none (another run took it first, or none was made yet)."""
    try:
        os.rename(spare_path(cache), datadir)  # atomic: of two runs, one gets it
    except OSError:
        return False
    if user is not None:
        os.chown(datadir, *user)
    os.chmod(datadir, 0o700)
    return True


def make_spare(cache: Callable[[], Path]) -> None:
    """Copy the cached data directory (``cache()`` returns it, checked or rebuilt) to its spare
    place for the next run's :func:`take_spare`, unless a spare is there already. Made under a
    temporary name and renamed into place, so a spare is never half a copy. Best effort: a
    failure leaves the next run to copy as before."""
    # any failure (a full disk, a cache that fails to build) is the next run's to meet and report
    with contextlib.suppress(Exception):
        source = cache()
        spare = spare_path(source)
        if spare.exists():
            return
        spare.parent.mkdir(mode=0o700, exist_ok=True)
        _drop_stale_spares(spare)
        tmp = spare.with_name(f"{spare.name}.tmp{os.getpid()}")
        try:
            # at a low priority: it runs beside this run's tests, which come first
            nice = ["nice", "-n", "10"] if shutil.which("nice") else []
            subprocess.run(
                [*nice, "cp", "-a", str(source), str(tmp)],
                check=True,
                capture_output=True,
                timeout=120,
                env=child_env(),
            )
            os.rename(tmp, spare)  # fails when another run put one there meanwhile
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _drop_stale_spares(spare: Path) -> None:
    """Remove the spares of the same service made from another cache (an upgraded server,
    other settings) and copies cut short by a process that died: they would stay in RAM."""
    service = spare.name.rsplit("-", 1)[0]
    for other in spare.parent.glob(f"{service}-*"):
        if other.name == spare.name:
            continue
        _, _, pid = other.name.partition(".tmp")
        if pid.isdigit() and _alive(int(pid)):
            continue  # another run's copy in progress
        shutil.rmtree(other, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def keep_newest(directory: str | Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently modified entries of ``directory`` (a bounded
    store: kept logs, hint files); entries that vanish meanwhile are skipped."""
    stamped: list[tuple[float, str]] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            with contextlib.suppress(OSError):
                stamped.append((entry.stat().st_mtime, entry.path))
    stamped.sort(reverse=True)
    for _, path in stamped[keep:]:
        with contextlib.suppress(OSError):
            os.unlink(path)


def which_any(names: list[str], extra_dirs: list[str]) -> str | None:
    """The first of ``names`` found on PATH or in ``extra_dirs``."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for directory in extra_dirs:
        for name in names:
            candidate = Path(directory) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None
