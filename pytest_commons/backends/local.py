"""The local backend: servers as supervised child processes of the test run.

Each server gets a free port on 127.0.0.1, a private 0700 data directory inside the run
directory (RAM-backed when the machine has /dev/shm) and a log file quoted in every error. When
pytest runs as root, servers that refuse root run as an unprivileged user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pytest_commons._cleanup import kill_process_group
from pytest_commons._lock import FileLock
from pytest_commons._run import Instance, RunContext, guarded, process_start_time, runtime_root
from pytest_commons.backends.base import AnySpec, Backend, wait_ready
from pytest_commons.errors import BackendUnavailable, ServiceStartError, keep_log, read_tail
from pytest_commons.services.base import LocalLaunch

_CHILDREN: list[subprocess.Popen[bytes]] = []  # keeps Popen objects alive (no ResourceWarning)


def platform_unsupported() -> BackendUnavailable | None:
    """Why the local backend cannot run here (it supervises POSIX process groups), or None."""
    if os.name == "posix":
        return None
    import sys

    return BackendUnavailable(
        f"the local backend runs servers on Linux and macOS only (this is {sys.platform})",
        "use the docker backend (Docker Desktop) or an external server URL "
        "(e.g. PYTEST_COMMONS_POSTGRES_URL)",
    )


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
                ["cp", "-a", str(work), str(tmp)], check=True, capture_output=True, timeout=120
            )
            (tmp / MANIFEST).write_text(_manifest(tmp))
            os.rename(tmp, cache)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return cache


def copy_datadir(cache: Path, datadir: Path, user: tuple[int, int] | None) -> None:
    """Copy a cached, initialised data directory into a run's private 0700 data directory."""
    subprocess.run(
        ["cp", "-a", f"{cache}/.", str(datadir)], check=True, capture_output=True, timeout=120
    )
    if user is not None:
        os.chown(datadir, *user)
    os.chmod(datadir, 0o700)


def open_log(path: str) -> IO[bytes]:
    """A server log for appending, readable by its owner only (mode 0600: it may show
    queries, names and paths other local users have no business reading)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _exec_failure(code: int | None, program: str, log_tail: str) -> str | None:
    """Why the spawn guard's shell could not exec ``program`` (it exits 126 or 127 after a
    line such as ``exec: PROGRAM: Exec format error``), or None when the server itself ran."""
    if code not in (126, 127):
        return None
    marker = f"{program}: "
    for line in reversed(log_tail.splitlines()):
        if marker in line:
            return line.rsplit(marker, 1)[1].strip() or None
    return None


class LocalBackend(Backend):
    """Servers as child processes; see the module docstring."""

    name = "local"

    def _user(self, launch: LocalLaunch | None = None) -> tuple[int, int] | None:
        return server_user(self.settings.get("commons_server_user"))

    def unavailable(self, spec: AnySpec) -> BackendUnavailable | None:
        unsupported = platform_unsupported()
        if unsupported:
            return unsupported
        missing = spec.local_unavailable()
        if missing:
            return BackendUnavailable(*missing)
        return None

    def _spawn(
        self,
        run_dir: str,
        argv: list[str],
        env: dict[str, str],
        user: list[int] | None,
        log: IO[bytes],
        cwd: str,
    ) -> subprocess.Popen[bytes]:
        """Spawn a server of the run at ``run_dir`` (marked and guarded: see ``guarded``)."""
        argv, env = guarded(run_dir, argv, env)
        full_env = {**os.environ, "LC_ALL": "C", **env}
        kwargs: dict[str, object] = {}
        if user is not None:
            kwargs.update(user=user[0], group=user[1], extra_groups=[])
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # argv built by the service spec
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=full_env,
            cwd=cwd,
            **kwargs,  # type: ignore[call-overload]
        )
        _CHILDREN.append(proc)
        return proc

    def _wait(
        self,
        spec: AnySpec,
        inst: Instance,
        proc: subprocess.Popen[bytes],
        info: dict[str, Any] | None = None,
    ) -> str:
        def exited() -> str | None:
            code = proc.poll()
            return None if code is None else _describe_exit(code)

        return wait_ready(
            spec,
            self.name,
            spec.info_from_dict(info or inst.info),
            self.settings.start_timeout(),
            exited=exited,
            log_tail=lambda: read_tail(inst.log_path),
            log_path=inst.log_path,
        )

    def start(self, spec: AnySpec, ctx: RunContext) -> Instance:
        started = time.monotonic()
        user = self._user()
        sdir = ctx.service_dir(spec.name)
        datadir = sdir / "data"
        shutil.rmtree(datadir, ignore_errors=True)  # leftovers of an instance that is gone
        datadir.mkdir(mode=0o700)
        try:
            spec.local_prepare(datadir, user)
        except ServiceStartError:
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServiceStartError(
                spec.name,
                self.name,
                f"preparing the data directory failed: {exc}",
                remedy=f"check the cache dir {self.settings.cache_dir()} (set by "
                f"{self.settings.source('commons_cache_dir')}; choose another with "
                "--commons-cache-dir) and the run directory",
            ) from exc
        log_path = str(sdir / "server.log")
        for attempt in range(3):
            port = free_port()
            launch = spec.local_launch(datadir, port, user)
            run_user = list(user) if (user and launch.run_as_server_user) else None
            with open_log(log_path) as log:
                try:
                    proc = self._spawn(
                        str(ctx.run_dir), launch.argv, launch.env, run_user, log, str(datadir)
                    )
                except OSError as exc:  # e.g. a binary built for another architecture
                    raise ServiceStartError(
                        spec.name,
                        self.name,
                        f"could not run {launch.argv[0]}: {exc.strerror or exc}",
                        remedy=f"reinstall the server, or choose another --{spec.name}-backend",
                    ) from None
            inst = Instance(
                service=spec.name,
                backend=self.name,
                info=launch.info,
                pid=proc.pid,
                start_time=process_start_time(proc.pid) or "",
                argv=launch.argv,
                env=launch.env,
                server_user=run_user,
                stop_signal=int(launch.stop_signal),
                log_path=log_path,
                paths=[str(sdir), *launch.paths],
                extra={
                    "datadir": str(datadir),
                    "graceful_signal": int(launch.graceful_signal),
                    "run_dir": str(ctx.run_dir),
                },
            )
            ctx.write(inst)
            try:
                inst.version = self._wait(spec, inst, proc, launch.ready_info)
                if launch.ready_info is not None:
                    self._secure(spec, launch, inst)
            except ServiceStartError as exc:
                kill_process_group(proc.pid, signal.SIGKILL, grace=1.0)
                why = _exec_failure(proc.poll(), launch.argv[0], exc.log_tail)
                if why is not None:  # the spawn guard's shell could not exec the server
                    raise ServiceStartError(  # the same words as when Popen itself fails
                        spec.name,
                        self.name,
                        f"could not run {launch.argv[0]}: {why}",
                        remedy=f"reinstall the server, or choose another --{spec.name}-backend",
                    ) from None
                port_lost = any(m in exc.log_tail for m in launch.port_in_use_markers)
                if port_lost and attempt < 2:
                    continue  # another process took the port between our check and the bind
                # the run directory goes at the end of the run: keep the log the error quotes
                raise keep_log(exc, str(runtime_root() / "failed-logs")) from None
            except BaseException:
                kill_process_group(proc.pid, signal.SIGKILL, grace=1.0)
                raise
            inst.ready = True
            inst.startup_seconds = round(time.monotonic() - started, 4)
            ctx.write(inst)
            return inst
        raise AssertionError("unreachable")

    def _secure(self, spec: AnySpec, launch: LocalLaunch, inst: Instance) -> None:
        try:
            spec.local_secure(launch)
        except Exception as exc:
            raise ServiceStartError(
                spec.name,
                self.name,
                f"setting the run's credentials failed: {type(exc).__name__}: {exc}",
                log_tail=read_tail(inst.log_path),
                log_path=inst.log_path,
            ) from exc

    # fault injection --------------------------------------------------------------------------
    def stop_only(self, instance: Instance) -> None:
        if instance.pid:
            sig = int(instance.extra.get("graceful_signal", instance.stop_signal))
            kill_process_group(instance.pid, sig, grace=30.0)

    def restart(self, spec: AnySpec, instance: Instance, ctx: RunContext | None) -> Instance:
        self.stop_only(instance)
        with open_log(instance.log_path) as log:
            proc = self._spawn(
                str(instance.extra.get("run_dir") or (ctx.run_dir if ctx else "")),
                instance.argv,
                instance.env,
                instance.server_user,
                log,
                instance.extra.get("datadir", "/"),
            )
        instance.pid = proc.pid
        instance.start_time = process_start_time(proc.pid) or ""
        if ctx is not None:
            ctx.write(instance)
        instance.version = self._wait(spec, instance, proc)
        return instance

    def pause(self, instance: Instance) -> None:
        if instance.pid:
            os.killpg(instance.pid, signal.SIGSTOP)

    def resume(self, instance: Instance) -> None:
        if instance.pid:
            os.killpg(instance.pid, signal.SIGCONT)


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
