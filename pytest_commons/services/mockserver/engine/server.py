"""The HTTP side: a threaded stdlib ``http.server`` speaking MockServer's REST API.

One port serves both the control plane (``PUT /mockserver/...``) and the mocked
traffic, as MockServer does. The server is the standard library's
:class:`http.server.ThreadingHTTPServer` with HTTP/1.1 keep-alive; werkzeug's
development server was measured too, but it closes every connection
(``Connection: close``), which doubles the cost of a request through one client.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from .actions import (
    ForwardError,
    canned_response,
    encode_response,
    forward,
    model_error_text,
    not_found,
    reason_for,
)
from .messages import log_line
from .model import (
    ErrorAction,
    ForwardAction,
    ModelError,
    RecordedRequest,
    RecordedResponse,
    ResponseAction,
    parse_expectations,
)
from .state import ERROR_RESPONSE, FORWARDED_REQUEST, MockServerState, Reply

_ALLOWED_HOSTS: Final = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1"}
_MAX_LINE: Final = 65536


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its engine and its open connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], engine: MockServerEngine) -> None:
        self.engine = engine
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (``getfqdn`` can take seconds)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def close_connections(self) -> None:
        """Shut down every open client connection (idle keep-alive ones included)."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _BadRequest(Exception):
    """The request framing itself is broken (bad Content-Length, chunking...)."""


class _Handler(BaseHTTPRequestHandler):
    """Dispatches every method to the control plane or to the expectations."""

    protocol_version = "HTTP/1.1"
    server: _Server
    #: seconds a connection may sit idle (or stall mid-request) before it is closed
    timeout = 120.0
    server_version = "pytest-commons-mockserver"

    def setup(self) -> None:
        """Disable Nagle and register the connection so ``stop()`` can close it."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def __getattr__(self, name: str) -> Callable[[], None]:
        """Route ``do_<METHOD>`` for any method (MockServer mocks any verb)."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr logging."""

    # ---------------------------------------------------------------- plumbing

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(_MAX_LINE)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("invalid chunk size") from None
                if size == 0:
                    while self.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(_MAX_LINE)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _BadRequest("invalid Content-Length") from None
        if size < 0:
            raise _BadRequest("invalid Content-Length")
        return self.rfile.read(size)

    def _write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _send(
        self,
        response: RecordedResponse,
        *,
        close: bool = False,
        action: ResponseAction | None = None,
    ) -> None:
        close = close or self.close_connection or bool(action and action.close_socket)
        if close:
            self.close_connection = True
        self._write(
            encode_response(
                response,
                head_only=self.command == "HEAD",
                close=close,
                suppress_content_length=bool(action and action.suppress_content_length),
                content_length_override=action.content_length_override if action else None,
            )
        )

    def _reply(self, reply: Reply) -> None:
        headers = [("Content-Type", reply.content_type), *reply.headers] if reply.body else []
        response = RecordedResponse(
            reply.status, reason_for(reply.status), headers, reply.body.encode("utf-8")
        )
        self._send(response)

    # ---------------------------------------------------------------- dispatch

    def _dispatch(self) -> None:
        try:
            self._handle()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug must answer 500, never hang the client
            self.close_connection = True
            message = f"internal error in the MockServer engine: {exc!r}"
            with contextlib.suppress(OSError):
                self._reply(Reply(500, message, "text/plain; charset=utf-8"))

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True  # before replying, so the reply says Connection: close
            self._reply(Reply(400, str(exc), "text/plain; charset=utf-8"))
            return
        target = urlsplit(self.path)
        path = unquote(target.path)
        if self.command == "PUT" and path.startswith("/mockserver/"):
            params = {k: v for k, v in parse_qsl(target.query, keep_blank_values=True)}
            reply = self.server.engine._control(path, params, body)
            self._reply(reply)
            if path == "/mockserver/stop":
                threading.Thread(target=self.server.engine.stop, daemon=True).start()
            return
        local = f"{self.server.server_name}:{self.server.server_port}"
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=parse_qsl(target.query, keep_blank_values=True),
            headers=list(self.headers.items()),
            body=body,
            keep_alive=not self.close_connection,
            local_address=local,
            remote_address=str(self.client_address[0]),
            raw_target=self.path,
        )
        self._serve(request)

    def _serve(self, request: RecordedRequest) -> None:
        state = self.server.engine.state
        entry = state.receive(request)
        expectation = entry.expectation
        if expectation is None:
            entry.response = not_found()
            self._send(entry.response)
            return
        action = expectation.action
        if action.delay:
            time.sleep(action.delay)
        if isinstance(action, ResponseAction):
            entry.response = canned_response(action)
            self._send(entry.response, action=action)
        elif isinstance(action, ForwardAction):
            entry.kind = FORWARDED_REQUEST
            try:
                entry.response = forward(action, request)
            except ForwardError:
                entry.response = not_found()
            self._send(entry.response)
        elif isinstance(action, ErrorAction):
            entry.kind = ERROR_RESPONSE
            self.close_connection = True
            if action.response_bytes:
                self._write(action.response_bytes)


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        return None
    return json.loads(body.decode("utf-8"))


class MockServerEngine:
    """An in-process server that speaks MockServer's REST API on a loopback port.

    Usage::

        with MockServerEngine() as engine:
            client = MockServerClient("127.0.0.1", engine.port)

    ``start()`` returns once the port is listening; ``reset()`` clears expectations
    and the request log directly, without an HTTP round trip.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, max_log_entries: int = 100_000
    ) -> None:
        """Configure (but do not start) an engine; only loopback hosts are accepted."""
        if host not in _ALLOWED_HOSTS:
            raise ValueError(f"the MockServer engine binds loopback only, not {host!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port}")
        self._host = _ALLOWED_HOSTS[host]
        self._requested_port = port
        self.state = MockServerState(max_log_entries)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> MockServerEngine:
        """Bind and serve in a background thread; returns when the port is listening."""
        with self._lifecycle:
            if self._server is not None:
                return self
            server = _Server((self._host, self._requested_port), self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"mockserver-engine-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def reset(self) -> None:
        """Forget every expectation and logged request (same as ``PUT /mockserver/reset``)."""
        self.state.reset()

    def __enter__(self) -> MockServerEngine:
        """Start the engine."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the engine."""
        self.stop()

    # ---------------------------------------------------------------- properties

    @property
    def running(self) -> bool:
        """Whether the engine is serving."""
        return self._server is not None

    @property
    def host(self) -> str:
        """The address the engine listens on (always loopback)."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        server = self._server
        return server.server_port if server is not None else self._requested_port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._host}:{self.port}"

    def __repr__(self) -> str:
        """Show where the engine listens and whether it runs."""
        status = "running" if self.running else "stopped"
        return f"<MockServerEngine {self.url} {status}>"

    # ---------------------------------------------------------------- control plane

    def _control(self, path: str, params: dict[str, str], body: bytes) -> Reply:
        """Answer one ``PUT /mockserver/...`` control-plane call."""
        text_type = "text/plain; charset=utf-8"
        try:
            document = _parse_json(body)
        except (ValueError, UnicodeDecodeError) as exc:
            error = ModelError("", f"is not valid JSON: {exc}")
            return Reply(400, model_error_text(error, body), text_type)
        try:
            return self._route(path, params, document)
        except ModelError as error:
            return Reply(400, model_error_text(error, body), text_type)

    def _route(self, path: str, params: dict[str, str], document: Any) -> Reply:
        state = self.state
        if path == "/mockserver/expectation":
            if document is None:
                raise ModelError("", "an expectation (or array of expectations) is required")
            return Reply(201, json.dumps(state.upsert(parse_expectations(document)), indent=2))
        if path == "/mockserver/clear":
            state.clear(document, params.get("type", "all"), params)
            return Reply(200)
        if path == "/mockserver/reset":
            state.reset()
            return Reply(200)
        if path == "/mockserver/retrieve":
            return state.retrieve(document, params)
        if path == "/mockserver/verify":
            failure = state.verify(document)
            return Reply(406, failure, "text/plain; charset=utf-8") if failure else Reply(202)
        if path == "/mockserver/verifySequence":
            failure = state.verify_sequence(document)
            return Reply(406, failure, "text/plain; charset=utf-8") if failure else Reply(202)
        if path == "/mockserver/status":
            return Reply(200, json.dumps({"ports": [self.port]}))
        if path == "/mockserver/bind":
            wanted = document.get("ports", []) if isinstance(document, dict) else []
            if all(p in (0, self.port) for p in wanted):
                return Reply(200, json.dumps({"ports": [self.port]}))
            message = (
                f"binding additional ports is not supported by this engine; "
                f"it listens on {self.port} only"
            )
            return Reply(406, message, "text/plain; charset=utf-8")
        if path == "/mockserver/stop":
            state.reset()
            return Reply(200)
        message = log_line(f"{path} is not supported by the pytest-commons MockServer engine")
        return Reply(501, message, "text/plain; charset=utf-8")
