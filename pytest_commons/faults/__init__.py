"""Network faults on demand between the code under test and a service.

``faults.proxy("redis")`` puts a TCP proxy on 127.0.0.1 in front of the test's own namespace
and gives its URL; the proxy's methods add faults (Toxiproxy's toxics: latency, bandwidth,
slow_close, timeout, reset_peer, slicer, limit_data) per direction, and ``down()``/``up()``
refuse and accept connections. Every proxy a test made is deleted at its teardown, faults and
all, so a proxied test never affects another. See docs/faults.md.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from pytest_commons.faults.model import (
    KINDS,
    STREAMS,
    FaultError,
    Toxic,
    UnknownFault,
    UnsupportedProtocol,
    make_toxic,
)

__all__ = [
    "KINDS",
    "Fault",
    "FaultError",
    "Faults",
    "Proxy",
    "UnknownFault",
    "UnsupportedProtocol",
]

ENGINES = ("toxiproxy", "builtin")

# the function fixture that holds a test's own namespace on each service, and how to get its URL
SERVICE_URLS: dict[str, tuple[str, str | None]] = {
    "postgres": ("postgres", "url"),
    "mysql": ("mysql", "url"),
    "redis": ("redis_url", None),
    "mockserver": ("mockserver_url", None),
    "aws": ("aws", "endpoint_url"),
    "rabbitmq": ("rabbitmq", "url"),
}


class Engine(Protocol):
    name: str

    def create(self, name: str, upstream: tuple[str, int]) -> tuple[str, int]: ...
    def delete(self, name: str) -> None: ...
    def set_enabled(self, name: str, enabled: bool) -> None: ...
    def add_toxic(self, name: str, toxic: Toxic) -> None: ...
    def remove_toxic(self, name: str, toxic_name: str) -> None: ...
    def close(self) -> None: ...


class Fault:
    """A fault on a proxy; ``remove()`` it, or use it as a context manager (removed at exit).

    ``toxics``: what the engine holds for it (two for ``direction="both"``).
    """

    def __init__(self, proxy: Proxy, name: str, toxics: list[Toxic]) -> None:
        self.proxy, self.name, self.toxics = proxy, name, toxics

    @property
    def kind(self) -> str:
        return self.toxics[0].kind

    def remove(self) -> None:
        self.proxy.remove(self.name)

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        streams = "+".join(t.stream for t in self.toxics)
        return f"<Fault {self.name} {self.kind} {streams} {self.toxics[0].attributes}>"


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream``; ``url`` is the proxied URL."""

    def __init__(
        self, engine: Engine, name: str, upstream: tuple[str, int], url: str | None = None
    ) -> None:
        self.engine, self.name, self.upstream = engine, name, upstream
        self.host, self.port = engine.create(name, upstream)
        self.url = _rewrite(url, self.host, self.port) if url else f"tcp://{self.host}:{self.port}"
        self.faults: dict[str, Fault] = {}
        self.enabled = True
        self._ids = itertools.count(1)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # faults ----------------------------------------------------------------------------------
    def add(
        self,
        kind: str,
        *,
        direction: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: float,
    ) -> Fault:
        """Add a fault of ``kind`` (a Toxiproxy toxic type) with its attributes.

        ``direction``: ``downstream`` (service → client, the default as in Toxiproxy),
        ``upstream`` (client → service) or ``both``. ``toxicity``: the share of connections it
        applies to. Unknown kinds, attributes and directions raise :class:`UnknownFault`.
        """
        base = name or f"{kind}_{next(self._ids)}"
        if base in self.faults:
            raise FaultError(f"faults: proxy {self.name} already has a fault named {base!r}")
        streams = list(STREAMS) if direction == "both" else [direction]
        toxics = [
            make_toxic(
                f"{base}_{stream}" if len(streams) > 1 else base,
                kind,
                stream,
                toxicity,
                dict(attributes),
            )
            for stream in streams
        ]
        added: list[Toxic] = []
        try:
            for toxic in toxics:
                self.engine.add_toxic(self.name, toxic)
                added.append(toxic)
        except BaseException:
            for toxic in added:
                self.engine.remove_toxic(self.name, toxic.name)
            raise
        fault = self.faults[base] = Fault(self, base, toxics)
        return fault

    def latency(self, ms: float, jitter: float = 0, **kw: Any) -> Fault:
        """Every chunk of data waits ``ms`` ± ``jitter`` milliseconds."""
        return self.add("latency", latency=ms, jitter=jitter, **kw)

    def bandwidth(self, kb_per_second: float, **kw: Any) -> Fault:
        """The stream carries at most ``kb_per_second`` KB/s (1 KB = 1000 bytes)."""
        return self.add("bandwidth", rate=kb_per_second, **kw)

    def timeout(self, ms: float = 0, **kw: Any) -> Fault:
        """Data stops (dropped); the connection is closed after ``ms`` (0: stalls until removed)."""
        return self.add("timeout", timeout=ms, **kw)

    def reset_peer(self, after_ms: float = 0, **kw: Any) -> Fault:
        """Connections are reset (TCP RST, "connection reset by peer") after ``after_ms``."""
        return self.add("reset_peer", timeout=after_ms, **kw)

    def slicer(
        self, average_size: int, size_variation: int = 0, delay_us: int = 0, **kw: Any
    ) -> Fault:
        """Data is cut into packets of ``average_size`` ± ``size_variation`` bytes, ``delay_us``
        microseconds apart."""
        return self.add(
            "slicer",
            average_size=average_size,
            size_variation=size_variation,
            delay=delay_us,
            **kw,
        )

    def limit_data(self, nbytes: int, **kw: Any) -> Fault:
        """The connection is closed once ``nbytes`` bytes have passed."""
        return self.add("limit_data", bytes=nbytes, **kw)

    def slow_close(self, ms: float, **kw: Any) -> Fault:
        """A close is passed on ``ms`` milliseconds late."""
        return self.add("slow_close", delay=ms, **kw)

    def remove(self, fault: Fault | str) -> None:
        """Remove a fault (the object, or its name); removing it twice is harmless."""
        found = self.faults.pop(fault.name if isinstance(fault, Fault) else fault, None)
        for toxic in found.toxics if found else ():
            self.engine.remove_toxic(self.name, toxic.name)

    def clear(self) -> None:
        """Remove every fault and bring the proxy up."""
        for name in list(self.faults):
            self.remove(name)
        self.up()

    # outages ---------------------------------------------------------------------------------
    def down(self) -> None:
        """The service is "down": open connections are closed and new ones refused."""
        self.engine.set_enabled(self.name, False)
        self.enabled = False

    def up(self) -> None:
        """The service is reachable again (on the same address)."""
        if not self.enabled:
            self.engine.set_enabled(self.name, True)
            self.enabled = True

    @contextmanager
    def outage(self) -> Iterator[Proxy]:
        """``with proxy.outage(): ...``: down inside the block, up again after it."""
        self.down()
        try:
            yield self
        finally:
            self.up()

    def close(self) -> None:
        self.engine.delete(self.name)

    def __repr__(self) -> str:
        host, port = self.upstream
        return f"<Proxy {self.name} {self.host}:{self.port} → {host}:{port} ({self.engine.name})>"


class Faults:
    """What the ``faults`` fixture gives: ``proxy(service)`` plus the engine's name."""

    def __init__(self, engine: Engine, prefix: str, request: Any = None) -> None:
        self.engine, self.prefix, self.request = engine, prefix, request
        self.proxies: list[Proxy] = []
        self._ids = itertools.count(1)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def proxy(self, target: str | tuple[str, int]) -> Proxy:
        """A proxy in front of ``target``: a service name (``postgres``, ``mysql``, ``redis``,
        ``mockserver``, ``aws``, ``rabbitmq``: the test's own database/db index/endpoint/vhost,
        its ``.url`` pointing through the proxy; ``kafka``: a
        :class:`~pytest_commons.faults.kafka.KafkaProxy`, a broker of the test's own behind
        the proxy), a URL with a host and port, or a ``(host, port)`` pair."""
        url: str | None = None
        if isinstance(target, tuple):
            host, port = target
            label = "tcp"
        elif target in SERVICE_URLS:
            url = self._service_url(target)
            host, port = _host_port(url, target)
            label = target
        elif target == "kafka":
            return self._kafka_proxy()
        elif "://" in target:
            url = target
            host, port = _host_port(url, target)
            label = urlsplit(url).scheme or "tcp"
        else:
            raise UnsupportedProtocol(
                f"faults: no proxy for {target!r}: name a service "
                f"({', '.join([*SERVICE_URLS, 'kafka'])}), a URL with host and port, or a "
                "(host, port) pair"
            )
        name = f"{self.prefix}-{next(self._ids)}-{label}"
        proxy = Proxy(self.engine, name, (host, port), url)
        self.proxies.append(proxy)
        return proxy

    def _kafka_proxy(self) -> Proxy:
        """A broker of the test's own behind a proxy (see :mod:`pytest_commons.faults.kafka`)."""
        if self.request is None:
            raise FaultError("faults: proxy('kafka') needs the faults fixture's request")
        from pytest_commons.faults.kafka import KafkaProxy
        from pytest_commons.plugin.state import get_registry

        registry = get_registry(self.request.config)
        name = f"{self.prefix}-{next(self._ids)}-kafka"
        proxy = KafkaProxy(
            self.engine, name, registry.config, registry.ctx, self.request.node.nodeid
        )
        self.proxies.append(proxy)
        return proxy

    def _service_url(self, service: str) -> str:
        if self.request is None:
            raise FaultError(f"faults: proxy({service!r}) needs the faults fixture's request")
        fixture, attribute = SERVICE_URLS[service]
        value = self.request.getfixturevalue(fixture)
        return str(getattr(value, attribute) if attribute else value)

    def close(self) -> None:
        errors = []
        for proxy in self.proxies:
            try:
                proxy.close()
            except Exception as exc:  # every proxy is deleted even if one fails
                errors.append(exc)
        self.proxies.clear()
        if errors:
            raise errors[0]


def _host_port(url: str, what: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise FaultError(f"faults: cannot proxy {what}: {url!r} names no host and port")
    return parts.hostname, parts.port


def _rewrite(url: str, host: str, port: int) -> str:
    """``url`` with its host and port replaced (user, password, path and query kept)."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{port}"))


def process_label() -> str:
    return f"pc{os.getpid()}"
