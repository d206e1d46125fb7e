"""The local backend: servers as supervised child processes of the test run.

Each server gets a free port on 127.0.0.1, a private 0700 data directory inside the run
directory (RAM-backed when the machine has /dev/shm) and a log file quoted in every error. When
pytest runs as root, servers that refuse root run as an unprivileged user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pytest_commons._cleanup import kill_process_group
from pytest_commons._lock import FileLock
from pytest_commons._run import Instance, RunContext, guarded, process_start_time, runtime_root
from pytest_commons.backends.base import AnySpec, Backend, wait_ready
from pytest_commons.errors import BackendUnavailable, ServiceStartError, read_tail
from pytest_commons.services.base import LocalLaunch

_CHILDREN: list[subprocess.Popen[bytes]] = []  # keeps Popen objects alive (no ResourceWarning)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (callers retry if a server loses the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_user(preferred: str | None = None) -> tuple[int, int] | None:
    """(uid, gid) that servers run as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
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


def cached_build(cache: Path, ready: Callable[[Path], bool], build: Callable[[Path], None]) -> Path:
    """Build ``cache`` once (initdb, install-db …) and reuse it across runs.

    ``build(work)`` fills ``work``, a path in the private runtime directory (the server user may
    not reach a cache in a home directory); the result is copied into ``cache`` under a file
    lock and renamed into place, so concurrent runs never see half a cache.
    """
    if ready(cache):
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache) + ".lock"):
        if ready(cache):
            return cache
        work = runtime_root() / f"{cache.parent.name}-init-{cache.name}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            build(work)
            tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            subprocess.run(
                ["cp", "-a", str(work), str(tmp)], check=True, capture_output=True, timeout=120
            )
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


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class LocalBackend(Backend):
    """Servers as child processes; see the module docstring."""

    name = "local"

    def _user(self, launch: LocalLaunch | None = None) -> tuple[int, int] | None:
        return server_user(self.settings.get("commons_server_user"))

    def unavailable(self, spec: AnySpec) -> BackendUnavailable | None:
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

    def _wait(self, spec: AnySpec, inst: Instance, proc: subprocess.Popen[bytes]) -> str:
        def exited() -> str | None:
            code = proc.poll()
            return None if code is None else _describe_exit(code)

        return wait_ready(
            spec,
            self.name,
            spec.info_from_dict(inst.info),
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
                spec.name, self.name, f"preparing the data directory failed: {exc}"
            ) from exc
        log_path = str(sdir / "server.log")
        for attempt in range(3):
            port = free_port()
            launch = spec.local_launch(datadir, port, user)
            run_user = list(user) if (user and launch.run_as_server_user) else None
            with open(log_path, "ab") as log:
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
                paths=[str(sdir)],
                extra={
                    "datadir": str(datadir),
                    "graceful_signal": int(launch.graceful_signal),
                    "run_dir": str(ctx.run_dir),
                },
            )
            ctx.write(inst)
            try:
                inst.version = self._wait(spec, inst, proc)
            except ServiceStartError as exc:
                kill_process_group(proc.pid, signal.SIGKILL, grace=1.0)
                port_lost = any(m in exc.log_tail for m in launch.port_in_use_markers)
                if port_lost and attempt < 2:
                    continue  # another process took the port between our check and the bind
                raise
            except BaseException:
                kill_process_group(proc.pid, signal.SIGKILL, grace=1.0)
                raise
            inst.ready = True
            inst.startup_seconds = round(time.monotonic() - started, 4)
            ctx.write(inst)
            return inst
        raise AssertionError("unreachable")

    # fault injection --------------------------------------------------------------------------
    def stop_only(self, instance: Instance) -> None:
        if instance.pid:
            sig = int(instance.extra.get("graceful_signal", instance.stop_signal))
            kill_process_group(instance.pid, sig, grace=30.0)

    def restart(self, spec: AnySpec, instance: Instance, ctx: RunContext | None) -> Instance:
        self.stop_only(instance)
        with open(instance.log_path, "ab") as log:
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
