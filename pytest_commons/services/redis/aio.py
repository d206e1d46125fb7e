"""The async twin of the Redis fixture: ``redis_async`` (redis.asyncio, the same FLUSHDB).

redis-py's asyncio connections belong to the loop they were opened on, while the sync
``redis`` keeps one connection for the whole session. Two things bring the async twin close
to it:

- a connection a test released is kept for the next test that runs on the same loop (module or
  session loop scopes): no connect at all;
- on a new loop (function loop scope), a connection starts from a TCP connection the worker
  already opened and authenticated (``AUTH`` + ``SELECT``, once): the loop gets a duplicate of
  its socket (``asyncio.open_connection(sock=...)``), and when the loop closes that duplicate
  only its file descriptor goes — the TCP connection stays for the next test. A socket whose
  last command did not complete (the test left it mid-reply, in pub/sub, in a pipeline) is
  closed instead of reused.

Everything is closed on its own loop when the loop shuts down, or at the end of the session
(:class:`~pytest_commons.plugin.aio.LoopResources`).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.plugin.aio import LoopResources

if TYPE_CHECKING:
    import asyncio

    import redis.asyncio as aioredis

    from pytest_commons.services.redis.spec import RedisInfo

__all__ = ["redis_async"]


class _Sockets:
    """TCP connections to this worker's database, authenticated and on its index, that any
    loop may start a redis.asyncio connection from (a duplicate of the socket per loop)."""

    def __init__(self, info: RedisInfo) -> None:
        self.info = info
        self.idle: list[socket.socket] = []
        self.opened: list[socket.socket] = []

    def take(self) -> socket.socket | None:
        """An idle socket, or a new one; None when one cannot be prepared (the caller then
        connects the usual way, which reports the error)."""
        if self.idle:
            return self.idle.pop()
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
            sock.close()

    def close(self) -> None:
        for sock in self.opened:
            sock.close()
        self.opened, self.idle = [], []


class _Idle:
    """Released, still connected redis.asyncio connections, per event loop."""

    def __init__(self) -> None:
        self.by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        self.pool_classes: dict[tuple[int, int], type[Any]] = {}
        self.sockets: _Sockets | None = None

    def pool_class(self, resources: LoopResources, sockets: _Sockets | None) -> type[Any]:
        key = (id(resources), id(sockets))
        if key not in self.pool_classes:
            self.pool_classes[key] = _pool_class(resources, self, sockets)
        return self.pool_classes[key]

    def take(self) -> Any | None:
        """A kept connection of the running loop, or None."""
        import asyncio  # not at module level: the plugin loads this module in every run

        loop = asyncio.get_running_loop()
        idle = self.by_loop.get(loop)
        while idle:
            conn = idle.pop()
            if conn.is_connected:
                return conn
        return None

    def settle(self, made: list[Any]) -> None:
        """After a test: keep its released connections for the next test on their (open)
        loop; give the sockets of the others back (closed loop, clean) or close them."""
        for loop in [loop for loop in self.by_loop if loop.is_closed()]:
            for conn in self.by_loop.pop(loop):  # closed with their loop: sockets reusable
                _give_back(conn, self.sockets)
        for conn in made:
            home: asyncio.AbstractEventLoop | None = getattr(conn, "_commons_loop", None)
            clean = getattr(conn, "_commons_clean", False)
            if home is not None and not home.is_closed() and conn.is_connected and clean:
                self.by_loop.setdefault(home, []).append(conn)
            elif home is not None and not home.is_closed():
                _give_back(conn, self.sockets, clean=False)  # still in use on a live loop
            else:
                _give_back(conn, self.sockets)


def _give_back(conn: Any, sockets: _Sockets | None, clean: bool | None = None) -> None:
    sock = getattr(conn, "_commons_sock", None)
    if sock is None or sockets is None:
        return
    conn._commons_sock = None
    ok = getattr(conn, "_commons_clean", False) if clean is None else clean
    sockets.give_back(sock, ok)


def _pool_class(resources: LoopResources, idle: _Idle, sockets: _Sockets | None) -> type[Any]:
    """A redis.asyncio ConnectionPool whose connections are closed on their own loop by
    ``resources``, that starts from the connections ``idle`` kept for the running loop, and
    whose new connections start from ``sockets``' prepared TCP connections."""
    import asyncio

    from redis.asyncio import Connection, ConnectionPool

    from pytest_commons.services.redis.spec import own_port

    class BoundConnection(Connection):
        _commons_sock: socket.socket | None = None
        _commons_prepared = False
        _commons_clean = False

        async def connect(self) -> None:
            fresh = not self.is_connected
            await super().connect()  # type: ignore[no-untyped-call]
            if fresh:
                self._commons_loop = asyncio.get_running_loop()
                await resources.bind(self.disconnect)

        async def _connect(self) -> None:
            sock = sockets.take() if sockets is not None else None
            if sock is None:
                self._commons_prepared = False
                await super()._connect()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    own_port(self._writer.transport)  # type: ignore[union-attr]
                return
            try:
                reader, writer = await asyncio.open_connection(sock=sock.dup())
            except BaseException:
                sockets.give_back(sock, clean=False)  # type: ignore[union-attr]
                raise
            self._reader, self._writer = reader, writer
            self._commons_sock, self._commons_prepared = sock, True

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

    It connects on first use, in the test's event loop. Connections the test released are
    kept for the next test on the same loop (module/session loop scopes); on a new loop a
    connection starts from a TCP connection the worker already authenticated (no connect, no
    AUTH/SELECT per test). All are closed on their loop when it shuts down, or at the end of
    the session. Scope: function (a new client per test; making one costs microseconds).
    Cost: the ``redis`` fixture's FLUSHDB plus ≈0.1 ms per loop.
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
