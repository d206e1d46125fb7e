"""Finds or starts service instances, once per run, shared by every xdist worker.

``Registry.get(name)`` returns a :class:`ServiceHandle`. The first process to ask (under a
file lock in the run directory) picks a backend and starts the instance; the others read its
record. A failure is recorded too, so every worker reports the same reasons without retrying.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic

from pytest_commons.backends.base import Backend, get_backend
from pytest_commons.core.config import RunConfig
from pytest_commons.core.run import Instance, RunContext
from pytest_commons.errors import (
    BackendUnavailable,
    CommonsError,
    ConfigError,
    ServiceStartError,
    ServiceUnavailable,
)
from pytest_commons.plugin.settings import Settings, as_run_config
from pytest_commons.services import SERVICES
from pytest_commons.services.base import InfoT, ServiceSpec


class RecordedFailure(CommonsError):
    """A failure another process (or an earlier attempt) recorded for this run."""

    def __init__(self, message: str, *, unavailable: bool) -> None:
        self.unavailable = unavailable
        super().__init__(message)


def _quiet_import(module: str) -> None:
    # a failure is reported by the probe, which imports the driver again
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def load_spec(name: str, settings: RunConfig | Settings) -> ServiceSpec[Any]:
    if name not in SERVICES:
        raise ConfigError(
            name, "-", f"unknown service {name!r}", f"use one of {', '.join(SERVICES)}"
        )
    module_name, _, attr = SERVICES[name].spec.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    spec: ServiceSpec[Any] = cls(settings)
    return spec


class ServiceHandle(Generic[InfoT]):
    """A running service instance: where it is, who serves it, and fault injection.

    ``stop()``/``start()``/``restart()``/``pause()``/``resume()`` act on the shared instance:
    under xdist other workers see the outage too.
    """

    def __init__(
        self, spec: ServiceSpec[InfoT], backend: Backend, instance: Instance, ctx: RunContext | None
    ) -> None:
        self.spec, self._backend, self.instance, self._ctx = spec, backend, instance, ctx

    @property
    def service(self) -> str:
        return self.spec.name

    @property
    def backend(self) -> str:
        """``local``, ``docker`` or ``external``."""
        return self.instance.backend

    @property
    def info(self) -> InfoT:
        """Connection info (frozen dataclass; its repr masks passwords)."""
        return self.spec.info_from_dict(self.instance.info)

    @property
    def version(self) -> str:
        return self.instance.version

    @property
    def startup_seconds(self) -> float:
        return self.instance.startup_seconds

    @property
    def owned(self) -> bool:
        """True when the plugin started the instance (False for the external backend)."""
        return self.instance.owned

    def stop(self) -> None:
        """Stop the server, keeping its data, until :meth:`start` (fault injection)."""
        self._backend.stop_only(self.instance)

    def start(self) -> None:
        """Start a server stopped by :meth:`stop` again, on the same port and data."""
        self.instance = self._backend.restart(self.spec, self.instance, self._ctx)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP / docker pause): clients hang until :meth:`resume`."""
        self._backend.pause(self.instance)

    def resume(self) -> None:
        self._backend.resume(self.instance)

    def gone(self) -> str | None:
        """How the server ended if it is no longer running (``"was killed by SIGKILL"``), else
        None (also when the backend cannot tell: an external server)."""
        return self._backend.gone(self.instance)

    def logs(self) -> str:
        """The server's log so far."""
        return self._backend.logs(self.instance)

    def log_mark(self) -> float:
        """Where the server's log is now (cheap); :meth:`logs_since` gives what came after."""
        return self._backend.log_mark(self.instance)

    def logs_since(self, mark: float) -> str:
        """What the server logged after :meth:`log_mark` gave ``mark``."""
        return self._backend.logs_since(self.instance, mark)

    def __repr__(self) -> str:
        return (
            f"<ServiceHandle {self.service} backend={self.backend} version={self.version!r} "
            f"info={self.info!r}>"
        )


class Registry:
    """Per-process access to the run's services."""

    def __init__(self, ctx: RunContext, config: RunConfig | Settings) -> None:
        self.ctx, self.config = ctx, as_run_config(config)
        #: backend ``auto`` tries these; ``reuse``: keep the servers after the run
        self.order, self.reuse = list(self.config.backend_order), self.config.reuse
        self._futures: dict[str, Future[ServiceHandle[Any]]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def prestart(self, names: list[str]) -> None:
        """Start the named services in the background, in parallel."""
        from pytest_commons.core import imports as _imports

        _imports.install()
        with self._lock:
            for name in names:
                if name in self._futures:
                    continue
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=max(2, len(SERVICES)), thread_name_prefix="commons-start"
                    )
                self._futures[name] = self._pool.submit(self._acquire, name)

    def get(self, name: str) -> ServiceHandle[Any]:
        """The handle of ``name``, started if needed; raises CommonsError subclasses."""
        self.prestart([name])
        return self._futures[name].result()

    def started(self, name: str) -> ServiceHandle[Any] | None:
        """The handle of ``name`` if this process already has it (never starts anything)."""
        fut = self._futures.get(name)
        if fut is None or not fut.done() or fut.exception() is not None:
            return None
        return fut.result()

    def status(self, name: str) -> str:
        fut = self._futures.get(name)
        if fut is None:
            return "not requested"
        return (
            "ready"
            if fut.done() and fut.exception() is None
            else ("failed" if fut.done() else "starting")
        )

    def settle(self) -> None:
        """Wait until every start begun so far has ended (ready or failed); raises nothing.

        A start reads the process environment (``DOCKER_HOST``, for one) while it runs: code
        that changes the environment for a while waits here first.
        """
        with self._lock:
            futures = list(self._futures.values())
        for fut in futures:
            fut.exception()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    # -----------------------------------------------------------------------------------------
    def _acquire(self, name: str) -> ServiceHandle[Any]:
        spec = load_spec(name, self.config)
        if spec.driver_module and spec.check_driver() is None:
            # the probe needs the driver: import it while the server starts, not before
            threading.Thread(
                target=importlib.import_module,
                args=(spec.driver_module,),
                daemon=True,
                name=f"commons-import-{name}",
            ).start()
        ctx = self.ctx_for(spec)
        with ctx.lock(name):
            inst = ctx.read(name)
            if inst is not None and inst.ready:
                return ServiceHandle(spec, get_backend(inst.backend, self.config), inst, ctx)
            failure = ctx.read_failure(name)
            if failure is not None:
                data = json.loads(failure)
                raise RecordedFailure(data["message"], unavailable=data["unavailable"])
            try:
                backend, inst = (
                    self._start_or_reuse(spec, ctx) if self.reuse else self._start(spec, ctx)
                )
            except CommonsError as exc:
                unavailable = isinstance(exc, ServiceUnavailable)
                ctx.write_failure(
                    name, json.dumps({"message": str(exc), "unavailable": unavailable})
                )
                raise
            return ServiceHandle(spec, backend, inst, ctx)

    def ctx_for(self, spec: ServiceSpec[Any]) -> RunContext:
        """The run context, or this worker's slot of it for a service configured to give
        each xdist worker its own server (``spec.per_worker``, e.g. ``kafka_isolation=broker``)."""
        if spec.per_worker and self.ctx.worker_id not in ("master", "reuse"):
            return self.ctx.per_worker()
        return self.ctx

    def config_key(self, name: str) -> str:
        """What must match for a kept instance to be reused: every option of the service."""
        import hashlib

        values = self.config.fingerprint(name)
        return hashlib.sha256(repr(values).encode()).hexdigest()[:16]

    def _start_or_reuse(self, spec: ServiceSpec[Any], ctx: RunContext) -> tuple[Backend, Instance]:
        """--reuse-services: attach to a kept instance whose configuration matches, or start
        one in the persistent reuse context and keep it after the run."""
        from pytest_commons.core.cleanup import stop_instance

        key = self.config_key(spec.name)
        keep = RunContext.reuse(f"{spec.name}-{key}")  # other options: another kept server
        if ctx.slot:  # one kept server per worker
            keep = keep.per_worker_of(ctx.slot)
        with keep.lock(spec.name):
            kept = keep.read(spec.name)
            if kept is not None:
                if kept.ready and kept.extra.get("config") == key:
                    try:
                        kept.version = spec.probe(spec.info_from_dict(kept.info), timeout=2)
                    except Exception:  # gone or broken: start afresh
                        pass
                    else:
                        kept.reused, kept.startup_seconds = True, 0.0
                        ctx.write(kept)
                        return get_backend(kept.backend, self.config), kept
                kept.reused = False
                stop_instance(kept)
                keep.remove(spec.name)
            backend, inst = self._start(spec, keep)
            if inst.owned:
                inst.extra["config"] = key
                inst.reused = True
                keep.write(inst)
            else:  # an external server is not ours to keep (nor to list or "stop" in `down`)
                keep.remove(spec.name)
            ctx.write(inst)
            return backend, inst

    def candidates(self, name: str) -> tuple[str, list[str]]:
        choice = self.config.service(name).backend
        supported = SERVICES[name].backends
        if choice != "auto":
            if choice not in supported:
                raise ConfigError(
                    name,
                    choice,
                    f"the {choice} backend does not serve {name}",
                    f"use one of: auto, {', '.join(supported)}",
                )
            return choice, [choice]
        return choice, [b for b in self.order if b in supported]

    def _start(self, spec: ServiceSpec[Any], ctx: RunContext) -> tuple[Backend, Instance]:
        choice, candidates = self.candidates(spec.name)
        driver_missing = spec.check_driver()
        if driver_missing:
            raise ServiceUnavailable(spec.name, [("all backends", driver_missing)])
        reasons: list[tuple[str, str]] = []
        first_error: ServiceStartError | None = None
        for name in candidates:
            try:
                backend = get_backend(name, self.config)
                why = backend.unavailable(spec)
            except BackendUnavailable as exc:
                why = exc
            if why is not None:
                reasons.append((name, str(why)))
                continue
            if backend.name != "external" and ctx.owner_pid:
                ctx.ensure_reaper()
            try:
                return backend, backend.start(spec, ctx)
            except BaseException as exc:
                ctx.remove(spec.name)
                if not isinstance(exc, ServiceStartError):
                    raise
                # a configured URL or an explicit choice is intent: its failure is final
                if choice != "auto" or name == "external":
                    raise
                first_error = first_error or exc
                reasons.append((name, f"failed to start: {exc.what}"))
        if first_error is not None:
            raise first_error
        raise ServiceUnavailable(spec.name, reasons)
