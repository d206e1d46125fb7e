"""``faults.proxy("kafka")``: a broker of the test's own, behind the proxy.

A Kafka client uses the bootstrap address only for its first request; after that it connects
to the address the broker *advertises*. A proxy in front of the run's broker would carry that
first request and nothing else. So a Kafka proxy comes with a broker of its own: the local
engine's (Tansu ≈15 ms, or Apache Kafka ≈1 s, as ``kafka_engine`` chooses), started for the
test with the proxy's address as its advertised listener, empty, and stopped at the test's
teardown (or reaped with the run after a kill -9: it is recorded in the run directory).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_commons.faults import Engine, FaultError, Proxy
from pytest_commons.services.kafka.spec import KafkaSpec

if TYPE_CHECKING:
    from pytest_commons.core.config import RunConfig
    from pytest_commons.core.run import Instance, RunContext
    from pytest_commons.services.base import LocalLaunch
    from pytest_commons.services.kafka.client import Kafka

__all__ = ["KafkaProxy"]

_IDS = itertools.count(1)


class _BehindProxy(KafkaSpec):
    """The local broker on a port chosen before the proxy was made, advertising the proxy."""

    def __init__(self, settings: RunConfig, listen: int, advertised: int) -> None:
        super().__init__(settings)
        self.listen_port, self.advertised_port = listen, advertised

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        return super().local_launch(datadir, self.listen_port, server_user)


class KafkaProxy(Proxy):
    """A proxy in front of a Kafka broker started for this test alone.

    ``bootstrap_servers`` is the proxy's address, which the broker also advertises, so every
    connection a client opens (metadata, produce, fetch, group coordination) passes through
    the proxy and its faults. ``kafka`` is a view on this broker with the ``kafka`` fixture's
    API (``topic()``, ``producer()``, ``consume()``…); ``broker_version`` names the engine.
    """

    def __init__(
        self, engine: Engine, name: str, settings: RunConfig, ctx: RunContext, nodeid: str = ""
    ) -> None:
        from pytest_commons.backends import get_backend
        from pytest_commons.core.host import free_port

        listen = free_port()
        super().__init__(engine, name, ("127.0.0.1", listen), f"kafka://127.0.0.1:{listen}")
        self._ctx = ctx.per_worker_of(f"{ctx.worker_id}.proxy{next(_IDS)}-{os.getpid()}")
        self.instance: Instance | None = None
        try:
            spec = _BehindProxy(settings, listen, self.port)
            unavailable = spec.local_unavailable()
            if unavailable is not None:
                why, remedy = unavailable
                raise FaultError(
                    "faults: a proxy on kafka needs a broker of its own behind it (the local "
                    f"engine, advertising the proxy's address), and none can start here: {why}"
                    f"\n  remedy: {remedy}"
                )
            if ctx.owner_pid:
                ctx.ensure_reaper()  # a kill -9 of the run reaps this broker too
            self.instance = get_backend("local", settings).start(spec, self._ctx)
        except BaseException:
            self._stop_broker()
            super().close()
            raise
        self.bootstrap_servers = f"{self.host}:{self.port}"
        self.broker_version = self.instance.version
        self.kafka = _view(spec, self.instance, nodeid, self._ctx)

    def close(self) -> None:
        """Faults off, the view's clients closed, then the proxy deleted and the broker stopped."""
        problems: list[str] = []
        try:
            self.clear()
            problems = self.kafka.close_clients()
        finally:
            try:
                super().close()
            finally:
                self._stop_broker()
        if problems:
            import warnings

            warnings.warn("faults: kafka proxy: " + "; ".join(problems), stacklevel=2)

    def _stop_broker(self) -> None:
        from pytest_commons.core.cleanup import stop_instance

        found = self.instance or self._ctx.read("kafka")
        if found is not None:
            stop_instance(found)
        self._ctx.remove("kafka")
        self.instance = None


def _view(spec: KafkaSpec, inst: Instance, nodeid: str, ctx: RunContext) -> Kafka:
    from pytest_commons.services.kafka.client import Kafka, KafkaWorker
    from pytest_commons.services.kafka.spec import flavour

    run = ctx.run_id.rsplit("-", 1)[-1][:6]
    worker = KafkaWorker(
        info=spec.info_from_dict(inst.info),
        flavour=flavour(inst.version),
        backend="local",
        prefix=f"pc-{run}-{ctx.slot}",
    )
    return Kafka(worker, nodeid)
