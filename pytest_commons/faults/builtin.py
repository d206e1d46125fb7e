"""The built-in fault proxy: asyncio TCP proxies with Toxiproxy's fault semantics.

One event loop runs in a daemon thread of the test process, so nothing outlives the process
(``kill -9`` included). Proxies listen on 127.0.0.1 only. With no fault on a stream, bytes are
written to the other socket straight from ``data_received`` (no task, no queue); a stream
with faults is carried by a task that applies them in the order they were added.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar

from pytest_commons.faults.model import FaultError, Toxic

T = TypeVar("T")
_EOF = b""


class _Side(asyncio.Protocol):
    """One socket of a proxied connection (the client's, or the one to the service)."""

    def __init__(self, conn: _Conn, which: str) -> None:
        self.conn, self.which = conn, which
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.which == "client":
            self.conn.client_made(self)

    def data_received(self, data: bytes) -> None:
        self.conn.data(self.which, data)

    def eof_received(self) -> bool:
        # as Toxiproxy: the end of one side ends the whole connection, once what was sent
        # before it has passed the faults (no half-open connections left behind)
        self.conn.lost(self.which)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost(self.which)

    def pause_writing(self) -> None:
        self.conn.peer(self.which).pause()

    def resume_writing(self) -> None:
        self.conn.peer(self.which).resume()

    def pause(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(RuntimeError):
                self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if data:
            self.transport.write(data)
        elif self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.transport.close()


class _Pipe:
    """One direction of a connection: ``upstream`` (client → service) or ``downstream``."""

    def __init__(self, conn: _Conn, stream: str, src: _Side, dst: _Side) -> None:
        self.conn, self.stream, self.src, self.dst = conn, stream, src, dst
        self.buffer: deque[bytes] = deque()
        self.task: asyncio.Task[None] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.state: dict[tuple[str, str], Any] = {}  # per toxic: toxicity drawn, bytes sent
        self.busy = False

    def toxics(self) -> list[Toxic]:
        active = []
        for toxic in self.conn.proxy.toxics.values():
            if toxic.stream != self.stream:
                continue
            key = ("on", toxic.name)
            if key not in self.state:
                self.state[key] = toxic.toxicity >= 1.0 or random.random() < toxic.toxicity
            if self.state[key]:
                active.append(toxic)
        return active

    def feed(self, data: bytes) -> None:
        if self.task is None and not self.buffer and not self.conn.proxy.toxics_on(self.stream):
            self.dst.write(data)  # the fast path: no fault on this stream
            return
        self.buffer.append(data)
        if len(self.buffer) > 64:
            self.src.pause()
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        if self.task is None and (self.buffer or self.conn.proxy.toxics_on(self.stream)):
            self.task = asyncio.get_running_loop().create_task(self.run())

    async def wait(self, timeout: float | None) -> bool:
        """Wait for data or a change of faults; False when ``timeout`` passed first."""
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            done, _ = await asyncio.wait({self.waiter}, timeout=timeout)
            return bool(done)
        finally:
            self.waiter = None

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.task = None
        if self.buffer and not self.conn.closed:  # faults were removed while data arrived
            self.wake()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.conn.closed:
            toxics = self.toxics()
            stall = next((t for t in toxics if t.kind in ("timeout", "reset_peer")), None)
            if stall is not None:
                await self._stall(stall, loop)
                continue
            if not self.buffer:
                if not toxics:
                    return  # back to the fast path (nothing awaited since the check)
                await self.wait(None)
                continue
            if len(self.buffer) <= 16:
                self.src.resume()
            data = self.buffer.popleft()
            self.busy = True
            try:
                await self._carry(data, toxics)
            finally:
                self.busy = False

    async def _stall(self, stall: Toxic, loop: asyncio.AbstractEventLoop) -> None:
        """Toxiproxy's ``timeout`` and ``reset_peer``, which hold up the whole stream.

        ``timeout``: data is dropped; the connection is closed once no data came for
        ``timeout`` ms (never when 0) or at EOF. ``reset_peer``: the next data on the stream is
        dropped and ``timeout`` ms later the connection is closed — with a TCP RST when it was
        opened while the fault was on (Toxiproxy sets SO_LINGER 0 when a link starts), with a
        plain close for connections that were already open.
        """
        ms = stall.attr("timeout")
        deadline = None if (ms == 0 or stall.kind == "reset_peer") else loop.time() + ms / 1000
        while stall.name in self.conn.proxy.toxics and not self.conn.closed:
            if self.buffer:
                eof = _EOF in self.buffer
                self.buffer.clear()
                self.src.resume()
                if stall.kind == "reset_peer":
                    if ms:
                        await asyncio.sleep(ms / 1000)
                    self.conn.reset() if self.conn.linger0 else self.conn.close()
                    return
                if eof:
                    self.conn.close()
                    return
                if ms:
                    deadline = loop.time() + ms / 1000
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                self.conn.close()
                return
            await self.wait(left)

    async def _carry(self, data: bytes, toxics: list[Toxic]) -> None:
        pieces = [data]
        for toxic in toxics:
            if self.conn.closed:
                return
            kind = toxic.kind
            if kind == "latency":
                jitter = toxic.attr("jitter")
                delay = toxic.attr("latency") + (random.randint(-jitter, jitter) if jitter else 0)
                if delay > 0:
                    await asyncio.sleep(delay / 1000)
            elif kind == "bandwidth":
                rate = toxic.attr("rate")
                # as Toxiproxy: a chunk larger than 100 ms worth goes out in 100 ms pieces
                while rate > 0 and len(data) > rate * 100 and not self.conn.closed:
                    await asyncio.sleep(0.1)
                    self.dst.write(data[: rate * 100])
                    data = data[rate * 100 :]
                pieces = [data]
                if rate > 0 and data:
                    await asyncio.sleep(len(data) / (rate * 1000))
            elif kind == "slow_close":
                if not data:
                    await asyncio.sleep(toxic.attr("delay") / 1000)
            elif kind == "limit_data":
                key = ("sent", toxic.name)
                sent = int(self.state.get(key, 0))
                left = toxic.attr("bytes") - sent
                if data and left <= len(data):
                    if left > 0:
                        self.dst.write(data[:left])
                    self.state[key] = sent + max(left, 0)
                    self.conn.close()
                    return
                self.state[key] = sent + len(data)
            elif kind == "slicer" and data:
                pieces = self._slices(data, toxic)
        delay = next((t.attr("delay") for t in toxics if t.kind == "slicer"), 0)
        for index, piece in enumerate(pieces):
            if index and delay:
                await asyncio.sleep(delay / 1_000_000)
            if self.conn.closed:
                return
            self.dst.write(piece)

    @staticmethod
    def _slices(data: bytes, toxic: Toxic) -> list[bytes]:
        average, variation = toxic.attr("average_size"), toxic.attr("size_variation")
        out, at = [], 0
        while at < len(data):
            size = max(1, average + (random.randint(-variation, variation) if variation else 0))
            out.append(data[at : at + size])
            at += size
        return out


class _Conn:
    """A client connection and its connection to the service."""

    def __init__(self, proxy: _Proxy) -> None:
        self.proxy = proxy
        self.client = _Side(self, "client")
        self.server = _Side(self, "server")
        self.pipes = {
            "upstream": _Pipe(self, "upstream", self.client, self.server),
            "downstream": _Pipe(self, "downstream", self.server, self.client),
        }
        self.closed = False
        self.linger0 = False  # reset_peer was on when the connection started: RST on close
        self.lost_sides: set[str] = set()

    def peer(self, which: str) -> _Side:
        return self.server if which == "client" else self.client

    def client_made(self, side: _Side) -> None:
        if self.proxy.server is None:  # accepted as the proxy went down or was deleted
            self.closed = True
            assert side.transport is not None
            side.transport.close()
            return
        side.pause()
        self.proxy.conns.add(self)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.proxy.upstream
        try:
            await loop.create_connection(lambda: self.server, host, port)
        except OSError:
            self.close()  # the service is not there: the client sees its connection closed
            return
        if self.closed:  # closed (proxy down or deleted) while connecting: close() has run
            if self.server.transport is not None:
                self.server.transport.close()
            return
        self.linger0 = any(t.kind == "reset_peer" for t in self.proxy.toxics.values())
        self.client.resume()
        self.faults_changed()

    def data(self, which: str, data: bytes) -> None:
        self.pipes["upstream" if which == "client" else "downstream"].feed(data)

    def faults_changed(self) -> None:
        if self.server.transport is None:
            return  # still connecting: _connect calls this when the service answered
        for pipe in self.pipes.values():
            pipe.wake()

    def lost(self, which: str) -> None:
        if which in self.lost_sides:
            return
        self.lost_sides.add(which)
        pipe = self.pipes["upstream" if which == "client" else "downstream"]
        if pipe.task is None and not pipe.buffer:
            self.close()
        else:
            pipe.feed(_EOF)  # the close passes the faults first (slow_close, latency)
            self.close_after_drain(pipe)

    def close_after_drain(self, pipe: _Pipe) -> None:
        async def later() -> None:
            while (pipe.buffer or pipe.busy) and not self.closed:
                await asyncio.sleep(0.001)
            self.close()

        asyncio.get_running_loop().create_task(later())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy.conns.discard(self)
        for side in (self.client, self.server):
            if side.transport is not None:
                side.transport.close()
        for pipe in self.pipes.values():
            pipe.wake()

    def reset(self) -> None:
        """Close both sockets with a TCP RST (SO_LINGER 0), as Toxiproxy's reset_peer does."""
        if self.closed:
            return
        self.closed = True
        self.proxy.conns.discard(self)
        for side in (self.client, self.server):
            transport = side.transport
            if transport is None:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        for pipe in self.pipes.values():
            pipe.wake()


class _Proxy:
    def __init__(self, name: str, upstream: tuple[str, int]) -> None:
        self.name, self.upstream = name, upstream
        self.toxics: dict[str, Toxic] = {}
        self.conns: set[_Conn] = set()
        self.server: asyncio.Server | None = None
        self.port = 0
        self._streams: dict[str, int] = {"upstream": 0, "downstream": 0}

    def toxics_on(self, stream: str) -> int:
        return self._streams[stream]

    def changed(self) -> None:
        self._streams = {"upstream": 0, "downstream": 0}
        for toxic in self.toxics.values():
            self._streams[toxic.stream] += 1
        for conn in list(self.conns):
            conn.faults_changed()

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _Conn(self).client, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop_listening(self) -> None:
        server = self.server
        if server is not None:
            # stop accepting first, and let sockets already accepted become connections (then
            # closed below): CPython 3.11 leaks a socket accepted just before Server.close()
            # (its transport cannot attach to a closed server) — a client that reconnects
            # quickly, as librdkafka does, hits that window
            loop = asyncio.get_running_loop()
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
            for _ in range(4):
                await asyncio.sleep(0)
            server.close()
            self.server = None
        for conn in list(self.conns):
            conn.close()


class BuiltinEngine:
    """The built-in engine: ``create``/``delete`` proxies, add and remove faults, down/up."""

    name = "builtin"

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="commons-faults", daemon=True
        )
        self._thread.start()
        self._proxies: dict[str, _Proxy] = {}

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _proxy(self, name: str) -> _Proxy:
        try:
            return self._proxies[name]
        except KeyError:
            raise FaultError(f"faults: no proxy named {name!r} (it was deleted)") from None

    def create(self, name: str, upstream: tuple[str, int]) -> tuple[str, int]:
        proxy = _Proxy(name, upstream)

        async def go() -> None:
            await proxy.listen()

        self._call(go())
        self._proxies[name] = proxy
        return "127.0.0.1", proxy.port

    def delete(self, name: str) -> None:
        proxy = self._proxies.pop(name, None)
        if proxy is not None:
            self._call(proxy.stop_listening())

    def set_enabled(self, name: str, enabled: bool) -> None:
        proxy = self._proxy(name)
        if enabled and proxy.server is None:
            self._call(proxy.listen())
        elif not enabled:
            self._call(proxy.stop_listening())

    def add_toxic(self, name: str, toxic: Toxic) -> None:
        proxy = self._proxy(name)

        async def go() -> None:
            if toxic.name in proxy.toxics:
                raise FaultError(f"faults: proxy {name!r} already has a fault named {toxic.name!r}")
            proxy.toxics[toxic.name] = toxic
            proxy.changed()

        self._call(go())

    def remove_toxic(self, name: str, toxic_name: str) -> None:
        proxy = self._proxy(name)

        async def go() -> None:
            if proxy.toxics.pop(toxic_name, None) is not None:
                proxy.changed()

        self._call(go())

    def close(self) -> None:
        for name in list(self._proxies):
            with contextlib.suppress(Exception):
                self.delete(name)
        if self._loop.is_running():

            async def cancel_the_rest() -> None:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            with contextlib.suppress(Exception):
                self._call(cancel_the_rest())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()
