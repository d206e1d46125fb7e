"""The backend contract and what all backends share: settings and the readiness wait."""

from __future__ import annotations

import importlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from pytest_commons.core.config import RunConfig
from pytest_commons.core.run import Instance, RunContext
from pytest_commons.errors import BackendUnavailable, NotReady, ProbeRefused, ServiceStartError
from pytest_commons.plugin.settings import Settings, as_run_config
from pytest_commons.services.base import ConnectionInfo, ServiceSpec

AnySpec = ServiceSpec[Any]


#: a start that takes longer than this says so on the terminal (then every 5 s)
SLOW_START_SECONDS = 1.0


def wait_ready(
    spec: AnySpec,
    backend: str,
    info: ConnectionInfo,
    timeout: float,
    *,
    exited: Callable[[], str | None] = lambda: None,
    log_tail: Callable[[], str] = lambda: "",
    log_path: str = "",
    remedy: str = "",
) -> str:
    """Probe until the server answers (returns its version) or the deadline passes.

    ``exited`` returns a description when the server process/container is gone, which ends the
    wait at once with the log quoted.
    """
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.002
    last = "no answer yet"
    say_at = SLOW_START_SECONDS  # then every 5 s: the person at the terminal sees why
    while True:
        gone = exited()
        if gone:
            raise ServiceStartError(
                spec.name,
                backend,
                f"the server {gone} during start",
                log_tail=log_tail(),
                log_path=log_path,
                remedy=remedy,
            )
        try:
            return spec.probe(info, timeout=max(0.5, min(5.0, deadline - time.monotonic())))
        except NotReady as exc:
            last = str(exc) or last
        except ProbeRefused as exc:
            raise ServiceStartError(
                spec.name, backend, str(exc), log_tail=log_tail(), log_path=log_path, remedy=remedy
            ) from None
        except Exception as exc:  # a driver error the probe does not know: report, don't hang
            raise ServiceStartError(
                spec.name,
                backend,
                f"the readiness probe failed unexpectedly: {type(exc).__name__}: {exc}",
                log_tail=log_tail(),
                log_path=log_path,
                remedy=remedy,
            ) from exc
        if time.monotonic() >= deadline:
            raise ServiceStartError(
                spec.name,
                backend,
                f"not ready after {timeout:g} s (last probe: {last})",
                log_tail=log_tail(),
                log_path=log_path,
                remedy=remedy or "raise --service-start-timeout, or look at the log above",
            )
        waited = time.monotonic() - started
        if waited >= say_at:
            from pytest_commons.plugin import progress

            progress.notice(
                f"commons: {spec.name} ({backend} backend) is starting: {waited:.0f} s of "
                f"{timeout:g}, waiting for it to answer (last probe: {last})"
            )
            say_at = waited + 5
        time.sleep(delay)
        # a local server answers within ≈30-100 ms: probe every 10 ms then (a refused connect
        # costs ≈0.3 ms), not 25-50 ms late; slower starts back off to 50 ms
        delay = min(delay * 1.5, 0.01 if waited < 1.0 else 0.05)


class Backend(ABC):
    """Starts, stops and reports instances of services."""

    name: ClassVar[str]

    def __init__(self, settings: RunConfig | Settings) -> None:
        #: the run's resolved settings
        self.config = as_run_config(settings)

    @abstractmethod
    def unavailable(self, spec: AnySpec) -> BackendUnavailable | None:
        """None when this backend can serve ``spec`` here, else why not (and the remedy)."""

    @abstractmethod
    def start(self, spec: AnySpec, ctx: RunContext) -> Instance:
        """Bring up an instance, record it in ``ctx`` as soon as it exists, wait until ready."""

    def stop(self, instance: Instance) -> None:
        from pytest_commons.core.cleanup import stop_instance

        stop_instance(instance)

    # fault injection: backends that can, override these
    def restart(self, spec: AnySpec, instance: Instance, ctx: RunContext | None) -> Instance:
        raise NotImplementedError(f"the {self.name} backend cannot restart a service")

    def stop_only(self, instance: Instance) -> None:
        raise NotImplementedError(f"the {self.name} backend cannot stop a service for a test")

    def pause(self, instance: Instance) -> None:
        raise NotImplementedError(f"the {self.name} backend cannot pause a service")

    def resume(self, instance: Instance) -> None:
        raise NotImplementedError(f"the {self.name} backend cannot resume a service")

    def gone(self, instance: Instance) -> str | None:
        """How the instance's server ended if it is no longer running, else None (also when
        this backend cannot tell)."""
        return None

    def logs(self, instance: Instance) -> str:
        if instance.log_path:
            try:
                return Path(instance.log_path).read_text(errors="replace")
            except OSError:
                return ""
        return ""

    def log_mark(self, instance: Instance) -> float:
        """Where the server's log is now, for :meth:`logs_since` (cheap: taken for every test
        that uses the service). Here: the log file's size in bytes (0 without a log file)."""
        if instance.log_path:
            try:
                return float(os.stat(instance.log_path).st_size)
            except OSError:
                return 0.0
        return 0.0

    def logs_since(self, instance: Instance, mark: float) -> str:
        """What the server logged after ``mark`` (from :meth:`log_mark`)."""
        if not instance.log_path:
            return ""
        try:
            with open(instance.log_path, "rb") as log:
                log.seek(int(mark))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""


BACKENDS: dict[str, str] = {
    "local": "pytest_commons.backends.local:LocalBackend",
    "external": "pytest_commons.backends.external:ExternalBackend",
    "docker": "pytest_commons.backends.docker:DockerBackend",
}


def get_backend(name: str, settings: RunConfig | Settings) -> Backend:
    module_name, _, attr = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise BackendUnavailable(f"the {name} backend is not part of this installation") from exc
    cls: type[Backend] = getattr(module, attr)
    return cls(settings)
