"""The local backend: servers as supervised child processes of the test run.

Each server gets a free port on 127.0.0.1, a private 0700 data directory inside the run
directory (RAM-backed when the machine has /dev/shm) and a log file quoted in every error. When
pytest runs as root, servers that refuse root run as an unprivileged user.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from typing import IO, Any

from pytest_commons.backends.base import AnySpec, Backend, wait_ready
from pytest_commons.core.cleanup import CHILDREN, adopt, kill_process_group
from pytest_commons.core.host import free_port, server_user
from pytest_commons.core.run import Instance, RunContext, guarded, process_start_time, runtime_root
from pytest_commons.errors import BackendUnavailable, ServiceStartError, keep_log, read_tail
from pytest_commons.services.base import LocalLaunch


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


def _process_gone(instance: Instance) -> str | None:
    """How a local server ended, or None while it runs (any process of the run can ask)."""
    pid = instance.pid
    if not pid:
        return None
    proc = CHILDREN.get(pid)
    if proc is not None:  # started by this process: its exit status is ours to read
        code = proc.poll()
        return None if code is None else _describe_exit(code)
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None if process_start_time(pid) is not None else "is no longer running"
    if fields[0] in ("Z", "X") or (instance.start_time and fields[19] != instance.start_time):
        return "is no longer running"
    return None


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
        return server_user(self.config.server_user)

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
        adopt(proc)
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
            self.config.start_timeout,
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
                remedy=f"check the cache dir {self.config.cache_dir()} (set by "
                f"{self.config.source('commons_cache_dir')}; choose another with "
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
            spec.local_ready(datadir, user)
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

    def gone(self, instance: Instance) -> str | None:
        return _process_gone(instance)

    def pause(self, instance: Instance) -> None:
        if instance.pid:
            os.killpg(instance.pid, signal.SIGSTOP)

    def resume(self, instance: Instance) -> None:
        if instance.pid:
            os.killpg(instance.pid, signal.SIGCONT)
