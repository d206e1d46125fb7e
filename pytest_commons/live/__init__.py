"""A live application server for tests: any ASGI or WSGI app (FastAPI, Starlette, Flask, …)
under uvicorn on a free 127.0.0.1 port, in a thread of the test process.

Because the server runs in the test's process, what the test changes on the app object — a
FastAPI dependency override pointing at this test's database, say — is what the next request
sees (:mod:`pytest_commons.live.fastapi`).

    from pytest_commons.live import live_server

    app_server = live_server("myapp.main:app", scope="session")   # defines a fixture

    def test_health(app_server):
        assert app_server.client().get("/health").status_code == 200

uvicorn and httpx are imported when a server starts (extra ``[web]``), not when the plugin
loads.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    import asyncio

    import httpx

__all__ = ["LiveServer", "LiveServerError", "live_server"]

T = TypeVar("T")
LOG_TAIL = 40


class LiveServerError(RuntimeError):
    """The app did not start (or stop) under uvicorn; the message quotes its log."""


class _ThreadLog(logging.Handler):
    """Collects the records emitted on the server's thread (uvicorn's and the app's own)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread: int | None = None
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread or record.name.startswith("uvicorn"):
            with contextlib.suppress(Exception):
                self.lines.append(self.format(record))


def _interface(app: Any) -> str:
    """``wsgi`` for a WSGI callable (``app(environ, start_response)``), else uvicorn's auto."""
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else type(app).__call__
    if inspect.iscoroutinefunction(call) or inspect.isclass(app):
        return "auto"
    try:
        params = [p for p in inspect.signature(call).parameters if p != "self"]
    except (TypeError, ValueError):
        return "auto"
    return "wsgi" if len(params) == 2 else "auto"


class LiveServer:
    """One app served by uvicorn on ``127.0.0.1:<free port>``.

    ``.url`` (``http://127.0.0.1:PORT``), ``.port``, ``.app`` (the loaded app object),
    ``.client()`` / ``.async_client()`` (httpx, ``base_url`` set), ``.run(coro)`` (run a
    coroutine on the server's event loop — for objects the app's requests share), ``.log()``
    (what uvicorn and the app logged on the server's thread), ``.start()`` / ``.stop()``.
    Also a context manager.

    ``app`` is an ASGI or WSGI app object or an import string ``"pkg.module:attr"``
    (``factory=True``: a callable returning the app). ``ready_path``: a path that must answer
    (any status below 500) before the server counts as started; ``None`` trusts uvicorn's
    "started" (the socket is listening and the lifespan startup done). Other keyword
    arguments go to ``uvicorn.Config`` (``lifespan``, ``interface``, ``root_path``, …).
    """

    def __init__(
        self,
        app: Any,
        *,
        factory: bool = False,
        ready_path: str | None = None,
        start_timeout: float = 30.0,
        **uvicorn_options: Any,
    ) -> None:
        self.target = app
        self.factory = factory
        self.ready_path = ready_path
        self.start_timeout = start_timeout
        self.options = uvicorn_options
        self.app: Any = None
        self.host = "127.0.0.1"
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log = _ThreadLog()
        self._clients: list[Any] = []

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _load(self) -> Any:
        target = self.target
        if isinstance(target, str):
            from uvicorn.importer import import_from_string

            target = import_from_string(target)
        return target() if self.factory else target

    def start(self) -> LiveServer:
        """Bind a free port, serve, and return once the app answers (or raise with its log)."""
        if self.running:
            return self
        import uvicorn

        self.app = self._load()
        options = {"interface": _interface(self.app), "log_config": None, **self.options}
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host=self.host, port=self.port, **options)
        self._server = server = uvicorn.Server(config)
        root = logging.getLogger()
        root.addHandler(self._log)
        uvicorn_logger = logging.getLogger("uvicorn")
        if uvicorn_logger.level == logging.NOTSET:
            uvicorn_logger.setLevel(logging.INFO)  # "Application startup complete", access lines

        import asyncio

        def serve() -> None:
            self._log.thread = threading.get_ident()
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            except BaseException:  # quoted by start()'s error instead of escaping the thread
                import traceback

                self._log.lines.extend(traceback.format_exc().splitlines())
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
                sock.close()

        started = time.monotonic()
        self._thread = threading.Thread(target=serve, name=f"live-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = started + self.start_timeout
        while not server.started:
            if not self._thread.is_alive():
                self._fail("exited during start")
            if time.monotonic() > deadline:
                self.stop()
                self._fail(f"was not ready after {self.start_timeout:.0f} s")
            time.sleep(0.002)
        if self.ready_path is not None:
            self._probe(deadline)
        self.startup_seconds = time.monotonic() - started
        return self

    def _probe(self, deadline: float) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=5) as client:
            while True:
                try:
                    if client.get(self.ready_path or "/").status_code < 500:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    self._fail(f"did not answer GET {self.ready_path} below 500")
                time.sleep(0.01)

    def _fail(self, what: str) -> None:
        tail = "\n".join(f"  | {line}" for line in self._log.lines[-LOG_TAIL:]) or "  (empty)"
        raise LiveServerError(
            f"live server for {self.target!r} on {self.url} {what}\n"
            f"  last lines of its log:\n{tail}\n"
            "  remedy: run the app by hand (`uvicorn <module>:<app>`) and read its startup error"
        )

    def stop(self) -> None:
        """Stop serving (the app's lifespan shutdown runs) and close the clients handed out."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                if hasattr(client, "aclose"):
                    self.run(client.aclose())
                else:
                    client.close()
        self._clients.clear()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        logging.getLogger().removeHandler(self._log)
        self._thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- using it -----------------------------------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the server's event loop and return its result (from any thread)."""
        if self._loop is None or not self.running:
            coro.close()
            raise LiveServerError(f"live server for {self.target!r} is not running")
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` with ``base_url`` set to this server (closed when it stops)."""
        import httpx

        client = httpx.Client(base_url=self.url, **kwargs)
        self._clients.append(client)
        return client

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` with ``base_url`` set; use it as ``async with`` in the
        test's loop (it is bound to that loop, so close it there)."""
        import httpx

        return httpx.AsyncClient(base_url=self.url, **kwargs)

    def log(self) -> str:
        """What uvicorn and the app logged on the server's thread so far."""
        return "\n".join(self._log.lines)

    def log_position(self) -> int:
        return len(self._log.lines)

    def log_since(self, position: int) -> str:
        return "\n".join(self._log.lines[position:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LiveServer {self.target!r} {self.url} {state}>"


def live_server(
    app: Any | Callable[[pytest.FixtureRequest], Any],
    *,
    scope: str = "session",
    name: str = "app_server",
    from_request: bool = False,
    **options: Any,
) -> Any:
    """Define a fixture that serves ``app`` once per ``scope`` and stops it after.

    ``app``: an ASGI/WSGI app object, an import string ``"pkg.module:app"``, or — with
    ``from_request=True`` — a function taking the fixture request and returning either (to
    build the app from other fixtures). ``options`` go to :class:`LiveServer`. The fixture is
    called ``name``; assign the result to a module-level (or conftest) name::

        app_server = live_server("myapp:app", scope="module")
        other = live_server(other_app, name="other")

    The server's log since the start of a failing test is added to its report
    (section "live server log"). Cost: uvicorn start → first response ≈0.1 s, once per
    scope (docs/benchmarks-async.md).
    """

    def fixture(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
        target = app(request) if from_request else app
        with LiveServer(target, **options) as server:
            yield server

    fixture.__name__ = fixture.__qualname__ = name
    fixture.__doc__ = f"The live server for {app!r} (scope {scope}): ``.url``, ``.client()``."
    return pytest.fixture(scope=scope, name=name)(fixture)  # type: ignore[call-overload]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test's report gets the log its live servers wrote during it."""
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        positions = item.stash.get(_POSITIONS, {})
        for argname, value in funcargs.items():
            if isinstance(value, LiveServer):
                text = value.log_since(positions.get(id(value), 0))
                report.sections.append((f"live server log ({argname}, {value.url})", text))
    return report


_POSITIONS = pytest.StashKey[dict[int, int]]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    item.stash[_POSITIONS] = {
        id(value): value.log_position()
        for value in funcargs.values()
        if isinstance(value, LiveServer)
    }
