"""One test run's shared state: its directory, locks, instance records and the reaper.

A run directory is made by the process that owns the run (plain pytest, or the xdist
controller) and handed to xdist workers, so every worker sees the same records. A record is
written the moment a server process or container exists, before it is ready, so the reaper
can always find what to clean up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_commons.core.childenv import child_env
from pytest_commons.core.lock import FileLock

RUN_PREFIX = "run-"
REUSE_DIR = "run-reuse"  # services kept between runs by --reuse-services
# Every server process a run spawns carries ``PYTEST_COMMONS_RUN=<run dir>`` in its environment
# (its children inherit it), so a reaper finds servers that were spawned but never recorded.
RUN_ENV = "PYTEST_COMMONS_RUN"
CLOSING = "closing"  # in a run directory: the run is being cleaned up, spawn nothing more

# The spawn guard: $0 is the run directory, "$@" the server's argv. It runs with RUN_ENV already
# in its environment (so a sweep can see it from here on) and execs the server in place (same
# pid) only while the run is open. The reaper marks the run closing *before* it sweeps, and
# removes services/ before closing, so a server is either visible to the sweep or never runs:
# "closing" absent here means either the sweep is still to come, or the run directory is being
# removed, and then services/ is already gone.
_GUARD_SH = """
if [ -e "$0/closing" ] || ! [ -d "$0/services" ]; then
  echo "pytest-commons: the run $0 is ending: not starting $1" >&2
  exit 111
fi
exec "$@"
"""


#: the least free space a RAM-backed run directory must have (servers' data dirs live there;
#: Docker's default /dev/shm of 64 MB fills up after a few databases)
MIN_FREE_BYTES = 256 * 1024 * 1024
#: why a preferred location was passed over (shown in the header)
RUNTIME_NOTES: list[str] = []


def _unusable(base: str) -> str:
    """Why ``base`` can't hold run data ("" when it can): read-only or short of space."""
    try:
        st = os.statvfs(base)
    except OSError as exc:
        return exc.strerror or str(exc)
    if st.f_flag & os.ST_RDONLY:
        return "it is read-only"
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        return f"only {free // (1024 * 1024)} MB free (need {MIN_FREE_BYTES // (1024 * 1024)} MB)"
    return ""


def _uid() -> int | str:
    """The user id (POSIX), or the login name where there are no uids (Windows)."""
    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        return int(getuid())
    import getpass

    return getpass.getuser()


def runtime_root() -> Path:
    """A private directory for run data, on RAM-backed storage when the machine has it (and it
    is writable with room to spare), else in the temporary directory on disk."""
    candidates = [
        os.environ.get("PYTEST_COMMONS_RUNTIME_DIR", ""),
        "/dev/shm",
        tempfile.gettempdir(),
    ]
    passed_over: list[str] = []
    for index, base in enumerate(candidates):
        if not base or not os.path.isdir(base):
            continue
        why = _unusable(base) if index < len(candidates) - 1 else ""
        if not why and not os.access(base, os.W_OK | os.X_OK):
            why = "it is not writable"
        if why:
            passed_over.append(f"{base}: {why}")
            continue
        uid = _uid()
        root = Path(base) / f"pytest-commons-{uid}"
        try:
            root.mkdir(mode=0o711, exist_ok=True)
        except OSError:
            continue
        st = root.stat()
        if hasattr(os, "getuid") and st.st_uid != uid:
            continue
        os.chmod(root, 0o711)  # servers running as another user must reach their data dirs
        if passed_over:
            note = f"run data in {root} ({'; '.join(passed_over)})"
            if note not in RUNTIME_NOTES:
                RUNTIME_NOTES.append(note)
        return root
    raise RuntimeError("pytest-commons: no writable temporary directory for run data")


# The reaper's watch loop, for systems with /proc: $1 owner pid, $2 run dir, $3 python. It polls
# the owner's start time (as process_start_time does: the 20th field after the last ")" of
# /proc/PID/stat; a changed or missing value means the owner is gone, pid reuse included) and
# the run directory (gone: the run ended in order). When the owner dies first, Python reaps.
_WATCH_SH = r"""
owner=$1 run_dir=$2 python=$3
starttime() {
  cur=
  { read -r stat < "/proc/$owner/stat"; } 2>/dev/null || return 0
  rest=${stat##*)}
  set -f; set -- $rest; set +f
  cur=${20}
}
starttime
first=$cur
while [ -n "$first" ] && [ -d "$run_dir" ]; do
  starttime
  [ "$cur" = "$first" ] || break
  sleep 0.2
done
[ -d "$run_dir" ] || exit 0
exec "$python" -m pytest_commons.core.reaper --reap "$run_dir"
"""


# Starts "$@" in the background, detached from the caller, and prints its pid: $1 is the log.
_DETACH_SH = 'log=$1; shift; "$@" </dev/null >/dev/null 2>>"$log" & echo $!'


def guarded(run_dir: str, argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``argv``/``env`` to spawn a server of the run at ``run_dir`` so that no kill can leak it:
    the server carries the run's mark from its first instruction (``_cleanup.run_processes``
    finds it), and does not start at all once the run is closing (``_GUARD_SH``)."""
    if not run_dir:
        return argv, env
    env = {**env, RUN_ENV: run_dir}
    if not os.path.exists("/bin/sh"):
        return argv, env
    return ["/bin/sh", "-c", _GUARD_SH, run_dir, *argv], env


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (guards against pid reuse), or None if it is gone.

    ``"?"`` when it cannot be told: on Windows, where ``os.kill(pid, 0)`` would send CTRL_C_EVENT
    rather than probe, every process counts as alive (nothing is reaped that may still run).
    """
    if os.name == "nt":
        return "?"
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


#: a database stamped on another host is taken for a dead run's after this long
DATABASE_DEAD_AFTER_SECONDS = 24 * 3600


def owner_stamp(owner: str) -> dict[str, Any]:
    """Who owns something left on a shared server (a Redis claim, a database): the run and
    worker, host, boot, pid and its start time, and when it was last said to be alive."""
    import socket

    return {
        "owner": owner,
        "host": socket.gethostname(),
        "boot": _boot_id(),
        "pid": os.getpid(),
        "start": process_start_time(os.getpid()) or "",
        "beat": round(time.time(), 3),
        "nonce": os.urandom(4).hex(),
    }


def stamp_is_dead(value: str, stale_seconds: float, now: float | None = None) -> bool:
    """Whether the owner of an ``owner_stamp`` (as JSON) is proved gone; never a guess.

    On this host (same boot): its pid is gone or is another process now. This host rebooted
    since: gone. Another host: nothing said it was alive for ``stale_seconds``. An unreadable
    stamp is alive.
    """
    import socket

    try:
        data = json.loads(value)
        host, boot, pid = data["host"], data["boot"], int(data["pid"])
        start, beat = str(data["start"]), float(data["beat"])
    except (ValueError, KeyError, TypeError):
        return False
    here, my_boot = socket.gethostname(), _boot_id()
    if host == here and boot and boot == my_boot:
        if not start:
            return False
        current = process_start_time(pid)
        return current is None or current not in ("?", start)
    if host == here and boot and my_boot:
        return True  # this machine rebooted since: that process is gone
    return (time.time() if now is None else now) - beat > stale_seconds


@dataclass
class Instance:
    """A running (or starting) service instance, as recorded in the run directory."""

    service: str
    backend: str
    info: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    startup_seconds: float = 0.0
    owned: bool = True
    ready: bool = False
    pid: int | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    server_user: list[int] | None = None
    stop_signal: int = 15
    log_path: str = ""
    paths: list[str] = field(default_factory=list)
    container_id: str = ""
    reused: bool = False
    start_time: str = ""  # of ``pid``, from /proc/PID/stat: no signal unless it still matches
    extra: dict[str, Any] = field(default_factory=dict)
    slot: str = ""  # the xdist worker a per-worker server belongs to ("" = shared)

    @property
    def label(self) -> str:
        """``kafka``, or ``kafka@gw0`` for a per-worker server."""
        return f"{self.service}@{self.slot}" if self.slot else self.service

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Instance:
        return cls(**json.loads(text))


class RunContext:
    """The run directory and what lives in it."""

    def __init__(
        self, run_dir: Path, owner_pid: int, worker_id: str, worker_count: int, slot: str = ""
    ) -> None:
        self.run_dir = run_dir
        self.owner_pid = owner_pid
        self.worker_id = worker_id
        self.worker_count = max(1, worker_count)
        self.services_dir = run_dir / "services"
        #: "" for the run's shared servers; ``gw0`` for the servers of one xdist worker
        self.slot = slot

    def per_worker(self) -> RunContext:
        """The same run, for servers that belong to this worker alone (records, locks, data
        directories and container labels named ``<service>@<worker>``); the owner stops them
        at the end like every other server of the run."""
        return self.per_worker_of(self.worker_id)

    def per_worker_of(self, worker: str) -> RunContext:
        """:meth:`per_worker` for the named worker (``gw0``)."""
        return RunContext(self.run_dir, self.owner_pid, self.worker_id, self.worker_count, worker)

    def slot_name(self, service: str) -> str:
        """``service``, or ``service@gw0`` in a :meth:`per_worker` context."""
        return f"{service}@{self.slot}" if self.slot else service

    @property
    def run_id(self) -> str:
        if REUSE_DIR in (self.run_dir.name, self.run_dir.parent.name):
            # kept services are labelled per runtime root: `down` (or a sweep) by another user
            # or another PYTEST_COMMONS_RUNTIME_DIR on the same engine never touches them
            import hashlib

            return "reuse-" + hashlib.sha256(str(self.run_dir).encode()).hexdigest()[:10]
        return self.run_dir.name[len(RUN_PREFIX) :]

    @property
    def db_prefix(self) -> str:
        """``pc_<run>_<worker>``: the prefix of every database this worker names."""
        return f"pc_{self.run_id}_{self.worker_id}".replace("-", "_").lower()

    @property
    def worker_index(self) -> int:
        digits = "".join(ch for ch in self.worker_id if ch.isdigit())
        return int(digits) if digits else 0

    @classmethod
    def create(cls) -> RunContext:
        root = runtime_root()
        run_dir = root / f"{RUN_PREFIX}{os.getpid()}-{os.urandom(3).hex()}"
        run_dir.mkdir(mode=0o711)
        (run_dir / "services").mkdir(mode=0o700)
        (run_dir / "owner").write_text(f"{os.getpid()} {process_start_time(os.getpid())}\n")
        return cls(run_dir, os.getpid(), "master", 1)

    # spawning ---------------------------------------------------------------------------------
    @property
    def closing(self) -> bool:
        return (self.run_dir / CLOSING).exists()

    def mark_closing(self) -> None:
        """From now on no server of this run starts (see ``_GUARD_SH``)."""
        with contextlib.suppress(OSError):
            (self.run_dir / CLOSING).touch()

    def guarded(self, argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        return guarded(str(self.run_dir), argv, env)

    # records ---------------------------------------------------------------------------------
    def lock(self, name: str) -> FileLock:
        return FileLock(str(self.services_dir / f"{self.slot_name(name)}.lock"))

    def record_path(self, service: str) -> Path:
        return self.services_dir / f"{self.slot_name(service)}.json"

    def write(self, instance: Instance) -> None:
        instance.slot = self.slot
        path = self.record_path(instance.service)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(instance.to_json())
        os.replace(tmp, path)

    def read(self, service: str) -> Instance | None:
        try:
            return Instance.from_json(self.record_path(service).read_text())
        except (OSError, ValueError):
            return None

    def remove(self, service: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.record_path(service).unlink()

    def instances(self) -> list[Instance]:
        found = []
        for path in sorted(self.services_dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                found.append(Instance.from_json(path.read_text()))
        return found

    def write_failure(self, service: str, message: str) -> None:
        (self.services_dir / f"{self.slot_name(service)}.failed").write_text(message)

    def read_failure(self, service: str) -> str | None:
        try:
            return (self.services_dir / f"{self.slot_name(service)}.failed").read_text()
        except OSError:
            return None

    def failures(self) -> list[str]:
        """Every recorded start failure of the run (shared and per-worker servers)."""
        found = []
        for path in sorted(self.services_dir.glob("*.failed")):
            with contextlib.suppress(OSError):
                found.append(path.read_text())
        return found

    def service_dir(self, service: str) -> Path:
        path = self.run_dir / self.slot_name(service)
        path.mkdir(mode=0o711, exist_ok=True)
        return path

    # reaper ----------------------------------------------------------------------------------
    def ensure_reaper(self) -> None:
        """Start, once per run, the process that cleans up if the owner dies (kill -9).

        The reaper is detached (started by a shell that exits at once), so this process holds no
        ``Popen`` of a process that outlives it (``ResourceWarning: subprocess … is still
        running`` under ``-W error``) and leaves no zombie behind.
        """
        marker = self.run_dir / "reaper.pid"
        with FileLock(str(self.run_dir / "reaper.lock")):
            if marker.exists():
                return
            if not os.path.exists("/bin/sh"):
                # Windows: no detached watcher (and no safe liveness probe); the containers of a
                # killed run are removed by `pytest-commons down` (docs/platforms in README)
                marker.write_text("")
                return
            if os.path.exists("/proc/self/stat"):
                # a shell loop watches (≈2 ms to start, against ≈100 ms of CPU for a Python
                # interpreter beside pytest); Python runs only if there is something to reap
                cmd = ["/bin/sh", "-c", _WATCH_SH, "commons-reaper"]
            else:
                cmd = [sys.executable, "-m", "pytest_commons.core.reaper", "--watch"]
            cmd += [str(self.owner_pid), str(self.run_dir), sys.executable]
            log = str(self.run_dir / "reaper.log")
            spawned = subprocess.run(
                ["/bin/sh", "-c", _DETACH_SH, "commons-detach", log, *cmd],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                check=True,
                text=True,
                env=child_env(),
            )
            marker.write_text(spawned.stdout.strip())

    @classmethod
    def reuse(cls, kept: str = "") -> RunContext:
        """The persistent context that holds services kept by ``--reuse-services``: one per
        service and configuration (``kept``), so runs with other options (other checkouts)
        keep servers of their own instead of stopping each other's."""
        run_dir = runtime_root() / REUSE_DIR
        if kept:
            run_dir.mkdir(mode=0o711, exist_ok=True)
            run_dir = run_dir / kept
        (run_dir / "services").mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(run_dir, 0o711)
        return cls(run_dir, 0, "reuse", 1)

    @classmethod
    def kept_contexts(cls) -> list[RunContext]:
        """Every context holding kept services (``reuse()`` and each ``reuse(kept)``)."""
        base = cls.reuse()
        found = [base]
        for path in sorted(base.run_dir.iterdir()):
            if path.is_dir() and (path / "services").is_dir() and path.name != "services":
                found.append(cls(path, 0, "reuse", 1))
        return found

    def destroy(self) -> None:
        # services/ first: a guard that finds "closing" gone must also find services/ gone
        shutil.rmtree(self.services_dir, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def stale_runs(root: Path | None = None) -> Iterator[Path]:
    """Run directories whose owner process is gone (left by a crash the reaper missed)."""
    root = root or runtime_root()
    for run_dir in root.glob(f"{RUN_PREFIX}*"):
        if run_dir.name == REUSE_DIR:
            continue
        try:
            pid_text, start = (run_dir / "owner").read_text().split()
        except (OSError, ValueError):
            if time.time() - run_dir.stat().st_mtime > 60:
                yield run_dir
            continue
        current = process_start_time(int(pid_text))
        if current is None or (start not in ("?", "None") and current not in ("?", start)):
            yield run_dir
