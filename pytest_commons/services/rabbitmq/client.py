"""What the ``rabbitmq`` fixture hands out, and the per-worker virtual host behind it.

Isolation: each xdist worker gets a virtual host of its own (``pc_<run>_<worker>``), made when
the worker first needs it and deleted at the end. After every test the plugin closes the
connections the test left open in it and deletes every queue, every exchange that is not a
built-in ``amq.*`` one and every binding left between built-in exchanges, through the
management API; so each test starts with none of an earlier test's queues, exchanges or
bindings. (Measured on the local server: ≈2 ms for an untouched vhost, ≈3.5 ms with a queue
in it; a new vhost per test would cost ≈20 ms. ``benchmarks/rabbitmq/run.py``.)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pytest_commons.core.run import owner_stamp, stamp_is_dead

if TYPE_CHECKING:
    import aio_pika
    import pika

    from pytest_commons.core.registry import ServiceHandle
    from pytest_commons.plugin.aio import LoopResources
    from pytest_commons.services.rabbitmq.spec import RabbitmqInfo, RabbitmqSpec

__all__ = ["Rabbitmq", "RabbitmqWorker"]

#: a vhost whose owner left no heartbeat for this long, from another host, is a dead run's
VHOST_DEAD_AFTER_SECONDS = 24 * 3600


def _q(name: str) -> str:
    return quote(name, safe="")


class RabbitmqWorker:
    """This worker's virtual host on the run's server (made, emptied, deleted here)."""

    def __init__(self, service: ServiceHandle[RabbitmqInfo], vhost: str) -> None:
        self.service = service
        self.spec: RabbitmqSpec = service.spec  # type: ignore[assignment]
        self.info: RabbitmqInfo = service.info.with_vhost(vhost)
        self.vhost = vhost
        self.api = self.spec.management(service.info)
        self._prefix = vhost

    def _check(self, response: Any, what: str) -> Any:
        if response.status_code >= 400:
            from pytest_commons.errors import ServiceStartError

            reason = response.text.strip()[:300]
            remedy = (
                f"give the user {self.info.user!r} the administrator tag (it creates and "
                "deletes virtual hosts), or point the plugin at a server where it has it"
                if response.status_code in (401, 403)
                else "look at the server's log"
            )
            raise ServiceStartError(
                "rabbitmq",
                self.service.backend,
                f"{what}: the management API answered {response.status_code} ({reason})",
                remedy=remedy,
            )
        return response

    def create(self, prefix: str) -> None:
        """Make the virtual host (stamped with its owner) and let the user use it."""
        self._prefix = prefix
        stamp = json.dumps(owner_stamp(prefix), sort_keys=True)
        vhost = _q(self.vhost)
        self._check(
            self.api.put(f"/vhosts/{vhost}", json={"description": stamp}),
            f"creating the virtual host {self.vhost!r}",
        )
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        self._check(
            self.api.put(f"/permissions/{vhost}/{_q(self.info.user)}", json=everything),
            f"granting {self.info.user!r} the virtual host {self.vhost!r}",
        )

    def collect_dead(self) -> list[str]:
        """Delete the virtual hosts of runs proved dead (``pc_…`` with a dead owner stamp);
        those without a stamp, and live runs', are never touched."""
        gone: list[str] = []
        listed = self.api.get("/vhosts", params={"columns": "name,description"})
        if listed.status_code != 200:
            return gone
        for row in listed.json():
            name, description = str(row.get("name", "")), str(row.get("description") or "")
            if not name.startswith("pc_") or name == self.vhost or not description:
                continue
            if stamp_is_dead(description, VHOST_DEAD_AFTER_SECONDS):
                with contextlib.suppress(Exception):
                    self.api.delete(f"/vhosts/{_q(name)}")
                    gone.append(name)
        return gone

    def empty(self) -> list[str]:
        """Close the connections into the vhost and delete what tests declared in it; returns
        what was deleted (``queue:name``, ``exchange:name``, ``binding:src->dst``)."""
        vhost = _q(self.vhost)
        deleted: list[str] = []
        conns = self.api.get(f"/vhosts/{vhost}/connections", params={"columns": "name"})
        for row in conns.json() if conns.status_code == 200 else []:
            self._close_connection(row["name"])
        columns = {"columns": "name,exclusive,owner_pid_details"}
        queues = self.api.get(f"/queues/{vhost}", params=columns)
        for row in self._check(queues, "listing queues").json():
            path = f"/queues/{vhost}/{_q(row['name'])}"
            if row.get("exclusive"):
                # refused while its connection lives, and the management API may not list that
                # connection yet (statistics lag): the vhost is made again, which closes every
                # connection into it at once (≈40 ms, only when a test left one)
                deleted.append(f"queue:{row['name']}")
                self.recreate()
                return deleted
            else:
                self._check(self.api.delete(path), "deleting a queue")
            deleted.append(f"queue:{row['name']}")
        exchanges = self.api.get(f"/exchanges/{vhost}", params={"columns": "name"})
        for row in self._check(exchanges, "listing exchanges").json():
            name = row["name"]
            if name and not name.startswith("amq."):
                self._check(self.api.delete(f"/exchanges/{vhost}/{_q(name)}"), "deleting")
                deleted.append(f"exchange:{name}")
        bindings = self.api.get(f"/bindings/{vhost}")
        for row in self._check(bindings, "listing bindings").json():
            if row.get("destination_type") == "exchange" and row.get("source"):
                path = (
                    f"/bindings/{vhost}/e/{_q(row['source'])}/e/{_q(row['destination'])}/"
                    f"{_q(row['properties_key'])}"
                )
                self._check(self.api.delete(path), "deleting a binding")
                deleted.append(f"binding:{row['source']}->{row['destination']}")
        return deleted

    def _close_connection(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.api.delete(
                f"/connections/{_q(name)}", headers={"X-Reason": "pytest-commons: the test is over"}
            )

    def recreate(self) -> None:
        """Delete the virtual host (and with it every connection, queue and exchange in it) and
        make it again."""
        self._check(self.api.delete(f"/vhosts/{_q(self.vhost)}"), "deleting the virtual host")
        self.create(self._prefix)
        # the broker may still be tearing the old vhost down: the next test's first connection
        # could be dropped mid-handshake (seen in CI on a loaded machine), so wait for one
        deadline, delay = time.monotonic() + 10, 0.01
        while True:
            try:
                self.spec.connect(self.info, timeout=5).close()
                return
            except Exception:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def delete(self) -> None:
        with contextlib.suppress(Exception):
            self.api.delete(f"/vhosts/{_q(self.vhost)}")
        self.api.close()


class Rabbitmq:
    """One test's view of RabbitMQ: its worker's virtual host, connection factories (pika,
    aio-pika, kombu), names unique to the test, ``publish`` and ``consume``.

    Connections made through it are closed after the test; the queues, exchanges and bindings
    the test declared (through it or not) are deleted before the next test.
    """

    def __init__(self, worker: RabbitmqWorker, loop_resources: LoopResources | None = None):
        self._worker = worker
        self._loop_resources = loop_resources
        self._counter = itertools.count(1)
        self._connections: list[Any] = []
        self._channel: Any = None

    # where -----------------------------------------------------------------------------------
    @property
    def info(self) -> RabbitmqInfo:
        """Connection info of this worker's virtual host (repr masks the password)."""
        return self._worker.info

    @property
    def url(self) -> str:
        """``amqp://user:password@host:port/<vhost>`` of this worker's virtual host."""
        return self._worker.info.url

    @property
    def vhost(self) -> str:
        return self._worker.vhost

    def name(self, base: str = "q") -> str:
        """A name no earlier declaration in this test used: ``<base>.<n>``."""
        return f"{base}.{next(self._counter)}"

    # connections -----------------------------------------------------------------------------
    def connection(self, **kwargs: Any) -> pika.BlockingConnection:
        """A new pika ``BlockingConnection`` to this worker's vhost (closed after the test).
        Keyword arguments go to ``pika.ConnectionParameters``."""
        conn = self._worker.spec.connect(self.info, **kwargs)
        self._connections.append(conn)
        return conn

    def channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        """A channel on one connection this view keeps for its helpers (and for you)."""
        if self._channel is None or self._channel.is_closed:
            self._channel = self.connection().channel()
        return self._channel

    def kombu_connection(self, **kwargs: Any) -> Any:
        """A kombu ``Connection`` to this worker's vhost (released after the test)."""
        from kombu.connection import Connection

        conn = Connection(str(self.url), **kwargs)  # type: ignore[no-untyped-call]
        self._connections.append(conn)
        return conn

    async def aio_connect(self, **kwargs: Any) -> aio_pika.abc.AbstractConnection:
        """An aio-pika connection in the test's event loop, closed on that loop after it."""
        import aio_pika

        conn: aio_pika.abc.AbstractConnection = await aio_pika.connect(str(self.url), **kwargs)
        if self._loop_resources is not None:
            await self._loop_resources.bind(conn.close)
        return conn

    # helpers ---------------------------------------------------------------------------------
    def queue(self, base: str = "q", **arguments: Any) -> str:
        """Declare a durable-less queue named after ``base`` (``<base>.<n>``); its name.
        ``arguments`` become the queue's x-arguments (``{"x-max-length": 10}``)."""
        name = self.name(base)
        self.channel().queue_declare(name, arguments=arguments or None)
        return name

    def exchange(self, base: str = "x", kind: str = "direct") -> str:
        """Declare an exchange of ``kind`` named after ``base``; its name."""
        name = self.name(base)
        self.channel().exchange_declare(name, exchange_type=kind)
        return name

    def bind(self, queue: str, exchange: str, routing_key: str = "") -> None:
        self.channel().queue_bind(queue, exchange, routing_key=routing_key)

    def publish(
        self, routing_key: str, *bodies: bytes | str, exchange: str = "", **properties: Any
    ) -> None:
        """Publish each body to ``exchange`` (default: the default exchange, so the routing
        key is a queue name) with publisher confirms: returns once the broker has them."""
        import pika

        channel = self.channel()
        channel.confirm_delivery()
        props = pika.BasicProperties(**properties) if properties else None
        for body in bodies:
            data = body.encode() if isinstance(body, str) else body
            channel.basic_publish(exchange, routing_key, data, properties=props, mandatory=True)

    def consume(self, queue: str, n: int = 1, timeout: float = 10) -> list[bytes]:
        """The next ``n`` messages of ``queue`` (acknowledged), waiting at most ``timeout``
        seconds for them; fails the test with what arrived when they do not."""
        import pytest

        channel = self.channel()
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        try:
            for method, _props, body in channel.consume(
                queue, inactivity_timeout=max(deadline - time.monotonic(), 0.01)
            ):
                if method is None:
                    break  # nothing more within the time left
                channel.basic_ack(method.delivery_tag)
                got.append(body)
                if len(got) >= n or time.monotonic() >= deadline:
                    break
        finally:
            channel.cancel()
        if len(got) < n:
            pytest.fail(
                f"rabbitmq: {len(got)} of {n} messages from queue {queue!r} within "
                f"{timeout:g} s: {got!r}",
                pytrace=False,
            )
        return got

    def close(self) -> None:
        for conn in self._connections:
            with contextlib.suppress(Exception):
                if hasattr(conn, "is_open") and not conn.is_open:
                    continue
                if hasattr(conn, "release"):
                    conn.release()
                else:
                    conn.close()
        self._connections.clear()
        self._channel = None

    def __repr__(self) -> str:
        return f"<Rabbitmq vhost {self.vhost!r} on {self.info.address}>"
