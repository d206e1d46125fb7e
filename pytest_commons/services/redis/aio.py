"""The async twin of the Redis fixture: ``redis_async`` (redis.asyncio, the same FLUSHDB).

redis-py's asyncio connections normally belong to the loop they were opened on (an asyncio
transport), while the sync ``redis`` keeps one connection for the whole session. Here a
connection belongs to no loop:

- it runs on a TCP connection the worker already opened and authenticated (``AUTH`` +
  ``SELECT`` + ``CLIENT SETNAME``, once), through :class:`_SocketStream`: each read and write
  waits on the loop that runs it (``loop.sock_recv``/``loop.sock_sendall``), so there is no
  transport to make per loop, nothing to close when a loop shuts down, and no "attached to a
  different loop";
- a connection a test released is kept for the next test, whatever loop that one runs on (a
  new one per test with the function loop scope): no connect at all. One the test did not
  release (a pub/sub left subscribed, a command cut off) or that holds unread bytes is closed
  instead.

Where no such TCP connection can be made (TLS, or the server refuses), redis-py connects the
usual way, on the test's loop; those connections are kept for the next test on the same loop
and closed on their loop when it shuts down, or at the end of the session
(:class:`~pytest_commons.plugin.aio.LoopResources`).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.plugin.aio import LoopResources

if TYPE_CHECKING:
    import asyncio

    import redis.asyncio as aioredis

    from pytest_commons.services.redis.spec import RedisInfo

__all__ = ["redis_async"]


class _Sockets:
    """TCP connections to this worker's database, authenticated and on its index, that
    redis.asyncio connections run on (:class:`_SocketStream`), whatever the loop."""

    def __init__(self, info: RedisInfo) -> None:
        self.info = info
        self.idle: list[socket.socket] = []
        self.opened: list[socket.socket] = []

    def take(self) -> socket.socket | None:
        """An idle socket, or a new one; None when one cannot be prepared (the caller then
        connects the usual way, which reports the error)."""
        while self.idle:
            sock = self.idle.pop()
            try:
                sock.recv(1, socket.MSG_PEEK)  # alive and quiet: nothing to read yet
            except (BlockingIOError, InterruptedError):
                return sock
            except OSError:
                pass
            self.give_back(sock, clean=False)  # closed by the server (a restart), or dirty
        try:
            return self._open()
        except OSError:
            return None

    def _open(self) -> socket.socket:
        from pytest_commons.services.redis.spec import OWN_CLIENT_NAME, encode_command, own_port

        info = self.info
        sock = socket.create_connection((info.host, info.port), timeout=5)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            commands = []
            if info.password:
                login = [info.username] if info.username else []
                commands.append(encode_command("AUTH", *login, info.password))
            commands.append(encode_command("SELECT", str(info.db)))
            # named: the connection-leak check knows the plugin's own connections
            commands.append(encode_command("CLIENT", "SETNAME", OWN_CLIENT_NAME))
            sock.sendall(b"".join(commands))
            answers = b""
            while answers.count(b"\r\n") < len(commands):
                chunk = sock.recv(4096)
                if not chunk:
                    raise OSError("the server closed the connection")
                answers += chunk
            if any(not line.startswith(b"+OK") for line in answers.split(b"\r\n")[:-1]):
                raise OSError(f"the server refused: {answers[:200]!r}")
            sock.setblocking(False)  # from now on read and written through a loop
        except BaseException:
            sock.close()
            raise
        self.opened.append(sock)
        own_port(sock)  # the leak check knows it even if a test renames the connection
        return sock

    def give_back(self, sock: socket.socket, clean: bool) -> None:
        if clean:
            self.idle.append(sock)
        else:
            self.idle = [s for s in self.idle if s is not sock]
            self.opened = [s for s in self.opened if s is not sock]
            sock.close()

    def close(self) -> None:
        for sock in self.opened:
            sock.close()
        self.opened, self.idle = [], []


class _SocketStream:
    """A connected socket as redis-py's asyncio connection uses its ``StreamReader``,
    ``StreamWriter`` and transport, waiting on whichever loop runs each call
    (``loop.sock_recv``/``loop.sock_sendall``) instead of belonging to one.

    ``on_close(stream)`` is called once, when redis-py closes the connection."""

    def __init__(self, sock: socket.socket, on_close: Callable[[_SocketStream], None]) -> None:
        self.sock = sock
        self._buf = bytearray()
        self._out = b""
        self._eof = False
        self._exc: BaseException | None = None
        self._closed = False
        self._on_close = on_close

    # -- what the parsers read (asyncio.StreamReader's API) --

    @property
    def _buffer(self) -> bytearray:
        """What arrived and was not read yet (the parsers look here for a dirty connection)."""
        self._pull()
        return self._buf

    def _pull(self) -> None:
        """Take what the socket already holds, without waiting."""
        while not (self._eof or self._exc or self._closed):
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._exc = exc
                return
            if not data:
                self._eof = True
                return
            self._buf += data

    def at_eof(self) -> bool:
        self._pull()
        return self._eof and not self._buf

    def exception(self) -> BaseException | None:
        return self._exc

    async def _fill(self) -> None:
        import asyncio

        if self._exc is not None:
            raise self._exc
        if self._closed:
            raise ConnectionResetError("the connection is closed")
        try:
            data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        except OSError as exc:
            self._exc = exc
            raise
        if data:
            self._buf += data
        else:
            self._eof = True

    async def readline(self) -> bytes:
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                return line
            if self._eof:
                line = bytes(self._buf)
                self._buf.clear()
                return line
            start = len(self._buf)
            await self._fill()

    async def readexactly(self, n: int) -> bytes:
        import asyncio

        while len(self._buf) < n:
            if self._eof:
                partial = bytes(self._buf)
                self._buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            await self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def read(self, n: int = -1) -> bytes:
        if not self._buf and not self._eof:
            await self._fill()
        size = len(self._buf) if n < 0 else min(n, len(self._buf))
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    # -- what the connection writes with (asyncio.StreamWriter's and the transport's API) --

    @property
    def transport(self) -> _SocketStream:
        return self

    def write(self, data: bytes) -> None:
        self.writelines([data])

    def writelines(self, chunks: Iterable[bytes]) -> None:
        """Sent at once as far as the socket takes it; the rest by ``drain()``."""
        data = self._out + b"".join(chunks)
        if self._out or self._exc is not None or self._closed:
            self._out = data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._exc, sent = exc, 0
        self._out = data[sent:]

    async def drain(self) -> None:
        import asyncio

        if self._exc is not None:
            raise self._exc
        if self._closed:
            raise ConnectionResetError("the connection is closed")
        if self._out:
            out, self._out = self._out, b""
            try:
                await asyncio.get_running_loop().sock_sendall(self.sock, out)
            except OSError as exc:
                self._exc = exc
                raise

    def is_closing(self) -> bool:
        return self._closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        try:
            if name == "socket":
                return self.sock
            if name == "sockname":
                return self.sock.getsockname()
            if name == "peername":
                return self.sock.getpeername()
        except OSError:
            pass
        return default

    def idle(self) -> bool:
        """Nothing unread, unsent or failed: the next command may use the socket."""
        self._pull()
        return not (self._buf or self._out or self._eof or self._exc or self._closed)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close(self)

    async def wait_closed(self) -> None:
        return None


class _Idle:
    """Released, still connected redis.asyncio connections: on sockets (any loop), or on an
    asyncio transport (per event loop)."""

    def __init__(self) -> None:
        self.free: list[Any] = []  # on a _SocketStream: any loop may use them
        self.by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        self.pool_classes: dict[tuple[int, int], type[Any]] = {}
        self.sockets: _Sockets | None = None

    def pool_class(self, resources: LoopResources, sockets: _Sockets | None) -> type[Any]:
        key = (id(resources), id(sockets))
        if key not in self.pool_classes:
            self.pool_classes[key] = _pool_class(resources, self, sockets)
        return self.pool_classes[key]

    def take(self) -> Any | None:
        """A kept connection any loop may use, or one of the running loop, or None."""
        import asyncio  # not at module level: the plugin loads this module in every run

        while self.free:
            conn = self.free.pop()
            if conn.is_connected:
                return conn
        loop = asyncio.get_running_loop()
        idle = self.by_loop.get(loop)
        while idle:
            conn = idle.pop()
            if conn.is_connected:
                return conn
        return None

    def settle(self, made: list[Any]) -> None:
        """After a test: keep its released connections for the next test (on a socket: any
        loop; on a transport: the next test on the same, still open, loop); close the socket
        of one the test did not release."""
        for loop in [loop for loop in self.by_loop if loop.is_closed()]:
            del self.by_loop[loop]  # their loop's shutdown closed them
        for conn in made:
            stream: _SocketStream | None = getattr(conn, "_commons_stream", None)
            if stream is not None:
                if not conn.is_connected or conn._writer is not stream:
                    continue  # closed by redis-py: its socket was given back or closed then
                if getattr(conn, "_commons_clean", False) and stream.idle():
                    self.free.append(conn)
                else:
                    conn._close()  # not released, or left unread bytes: the socket goes
                continue
            home: asyncio.AbstractEventLoop | None = getattr(conn, "_commons_loop", None)
            clean = getattr(conn, "_commons_clean", False)
            if home is not None and not home.is_closed() and conn.is_connected and clean:
                self.by_loop.setdefault(home, []).append(conn)

    def close(self) -> None:
        """At the end of the session: the kept connections on sockets go (their loops' close
        the others)."""
        free, self.free = self.free, []
        for conn in free:
            with contextlib.suppress(Exception):
                conn._close()


def _pool_class(resources: LoopResources, idle: _Idle, sockets: _Sockets | None) -> type[Any]:
    """A redis.asyncio ConnectionPool that starts from the connections ``idle`` kept, whose new
    connections run on ``sockets``' prepared TCP connections (:class:`_SocketStream`), or, where
    none can be prepared, on a transport of the running loop closed on it by ``resources``."""
    import asyncio

    from redis.asyncio import Connection, ConnectionPool

    from pytest_commons.services.redis.spec import own_port

    class BoundConnection(Connection):
        _commons_stream: _SocketStream | None = None
        _commons_prepared = False
        _commons_clean = False

        async def connect(self) -> None:
            fresh = not self.is_connected
            await super().connect()  # type: ignore[no-untyped-call]
            if fresh and self._commons_stream is None:  # an asyncio transport: bound to the loop
                self._commons_loop = asyncio.get_running_loop()
                await resources.bind(self.disconnect)

        async def _connect(self) -> None:
            sock = sockets.take() if sockets is not None else None
            if sock is None:
                self._commons_prepared, self._commons_stream = False, None
                await super()._connect()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    own_port(self._writer.transport)  # type: ignore[union-attr]
                return
            stream = _SocketStream(sock, self._stream_closed)
            self._reader = self._writer = stream  # type: ignore[assignment]
            self._commons_stream, self._commons_prepared = stream, True

        def _stream_closed(self, stream: _SocketStream) -> None:
            """redis-py closed the connection: after a release (``aclose()``) and with nothing
            unread, the socket serves the next test; otherwise it is closed."""
            assert sockets is not None
            clean = self._commons_clean and not (stream._buf or stream._out or stream._exc)
            sockets.give_back(stream.sock, clean=clean and not stream._eof)

        async def on_connect_check_health(self, check_health: bool = True) -> None:
            if self._commons_prepared:  # AUTH and SELECT were sent when the socket was made
                self._parser.on_connect(self)  # type: ignore[no-untyped-call]
                return
            await super().on_connect_check_health(check_health)

    class ReusingPool(ConnectionPool):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.commons_made: list[Any] = []

        def make_connection(self) -> Any:
            kept = idle.take()
            conn = kept if kept is not None else super().make_connection()  # type: ignore[no-untyped-call]
            self.commons_made.append(conn)
            return conn

        def get_available_connection(self) -> Any:
            conn = super().get_available_connection()  # type: ignore[no-untyped-call]
            conn._commons_clean = False
            return conn

        async def release(self, connection: Any) -> None:
            connection._commons_clean = True
            await super().release(connection)

    ReusingPool.bound_connection = BoundConnection  # type: ignore[attr-defined]
    return ReusingPool


@pytest.fixture(scope="session")
def _redis_async_idle(redis_db: RedisInfo) -> Iterator[_Idle]:
    idle = _Idle()
    if not redis_db.ssl:
        idle.sockets = _Sockets(redis_db)
    yield idle
    idle.close()
    if idle.sockets is not None:
        idle.sockets.close()


@pytest.fixture
def redis_async(
    redis_db: RedisInfo,
    _redis_empty: object,
    _commons_session_loop_resources: LoopResources,
    _redis_async_idle: _Idle,
) -> Iterator[aioredis.Redis]:
    """A ``redis.asyncio.Redis`` client on this worker's own database, emptied for this test
    (the same FLUSHDB as ``redis``).

    It connects on first use, on a TCP connection the worker already authenticated (no
    connect, no AUTH/SELECT per test) whose reads and writes wait on whichever loop runs them:
    nothing of it belongs to a loop, so any loop scope (a new loop per test included) and anyio
    work, and a connection the test released is kept for the next test. One it did not release
    (a pub/sub left subscribed, a command cancelled mid-reply) is closed. Scope: function (a new
    client per test; making one costs microseconds). Cost: the ``redis`` fixture's FLUSHDB plus
    redis-py's asyncio overhead per command.
    """
    from redis.asyncio import Redis

    from pytest_commons.services.redis.spec import OWN_CLIENT_NAME

    idle = _redis_async_idle
    pool_class = idle.pool_class(_commons_session_loop_resources, idle.sockets)
    connection_class = pool_class.bound_connection
    if redis_db.ssl:
        from redis.asyncio import SSLConnection

        connection_class = type("BoundSSLConnection", (SSLConnection, connection_class), {})
    pool = pool_class(
        connection_class=connection_class,
        host=redis_db.host,
        port=redis_db.port,
        db=redis_db.db,
        password=redis_db.password or None,
        username=redis_db.username or None,
        socket_connect_timeout=5,
        client_name=OWN_CLIENT_NAME,
    )
    try:
        yield Redis(connection_pool=pool)
    finally:
        with contextlib.suppress(Exception):
            idle.settle(pool.commons_made)
