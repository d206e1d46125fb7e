"""The external backend: a server someone else runs, given by URL.

It is never started or stopped. Fixtures on it create and drop only the databases, keys and
topics the plugin named itself.
"""

from __future__ import annotations

import socket
import time

from pytest_commons.backends.base import AnySpec, Backend, wait_ready
from pytest_commons.core.run import Instance, RunContext
from pytest_commons.errors import BackendUnavailable, ConfigError, ServiceStartError
from pytest_commons.plugin.options import OPTIONS


class ExternalBackend(Backend):
    """Connects to a URL from ``--<service>-url`` / ``$PYTEST_COMMONS_<SERVICE>_URL``."""

    name = "external"

    def unavailable(self, spec: AnySpec) -> BackendUnavailable | None:
        service = self.config.service(spec.name)
        if not service.url:
            opt = OPTIONS[service.url_key]
            return BackendUnavailable(
                f"${opt.env} is not set", f"set {opt.env} to a {spec.meta.title} your CI provides"
            )
        return None

    def start(self, spec: AnySpec, ctx: RunContext) -> Instance:
        started = time.monotonic()
        service = self.config.service(spec.name)
        key, url = service.url_key, service.url or ""
        opt = OPTIONS[key]
        try:
            info = spec.parse_url(url)
        except ValueError as exc:
            raise ConfigError(
                spec.name,
                self.name,
                f"malformed {service.source(key)}: {exc}",
                f"set {opt.env} to e.g. {spec.meta.url_help.lower()} like the one in the docs",
            ) from None
        addresses = getattr(info, "addresses", lambda: [(info.host, info.port)])()
        reasons = [_refused(host, port) for host, port in addresses]
        refused = reasons[0] if reasons and all(reasons) else ""
        if refused:
            raise ServiceStartError(
                spec.name,
                self.name,
                f"{info.describe()} refused the connection ({refused}): nothing listens there",
                remedy=f"start the server, or fix {service.source(key)}",
            )
        version = wait_ready(
            spec,
            self.name,
            info,
            self.config.start_timeout,
            remedy=f"check that {info.describe()} is reachable and that "
            f"{service.source(key)} holds the right credentials",
        )
        inst = Instance(
            service=spec.name,
            backend=self.name,
            info=info.to_dict(),
            version=version,
            owned=False,
            ready=True,
            startup_seconds=round(time.monotonic() - started, 4),
        )
        ctx.write(inst)
        return inst


def _refused(host: str, port: int) -> str:
    """The reason when a TCP connect to ``host:port`` is refused outright (nothing listens:
    waiting the start timeout would not help), else "" (accepted, or slow: the readiness wait
    decides)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return ""
    except ConnectionRefusedError as exc:
        return exc.strerror or "connection refused"
    except OSError:
        return ""
