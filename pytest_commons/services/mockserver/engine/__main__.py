"""``python -m pytest_commons.services.mockserver.engine``: the engine as a server process
(a "hub").

The local backend of the ``mockserver`` service runs this module as a supervised child
process, so one process serves a whole test run (shared by every xdist worker, killed by the
reaper if pytest dies, reported in the terminal summary).

The hub is a normal :class:`MockServerEngine` on ``--port`` plus per-process engines: one
pytest process (an xdist worker, or the lone ``master``) claims an engine of its own, on its
own port, so resetting it before each test never touches another worker's expectations or
request log. Two extra control-plane calls do that (MockServer itself has no such paths):

``PUT /mockserver/pytestCommons/info``
    ``200 {"engine": "pytest-commons", "version": ..., "engines": {name: port}}``
``PUT /mockserver/pytestCommons/engine`` body ``{"name": "...", "port": 0}``
    starts (or returns the running) engine called ``name``; ``port`` asks for a given port
    (re-claiming it after a restart of the hub); ``200 {"name": ..., "port": ...}``
``PUT /mockserver/pytestCommons/release`` body ``{"name": "..."}``
    stops that engine; ``200``

SIGTERM/SIGINT (or ``PUT /mockserver/stop`` on the hub port) stop every engine and exit.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from pytest_commons import __version__

from .model import ModelError
from .server import MockServerEngine
from .state import Reply

EXTENSION_PREFIX = "/mockserver/pytestCommons"


class EngineHub(MockServerEngine):
    """A MockServer engine that also starts and stops named sibling engines on demand."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, max_log_entries: int = 100_000
    ) -> None:
        """Configure the hub (and, later, its engines) on a loopback host."""
        super().__init__(host, port, max_log_entries=max_log_entries)
        self._max_log_entries = max_log_entries
        self._engines: dict[str, MockServerEngine] = {}
        self._engines_lock = threading.Lock()
        self.stopped = threading.Event()

    def claim(self, name: str, port: int = 0) -> MockServerEngine:
        """The running engine called ``name``, started first if needed (on ``port``, 0 = any)."""
        with self._engines_lock:
            engine = self._engines.get(name)
            if engine is not None and engine.running:
                return engine
            engine = MockServerEngine(self.host, port, max_log_entries=self._max_log_entries)
            engine.start()
            self._engines[name] = engine
        print(f"engine {name!r} on {engine.url}", flush=True)
        return engine

    def release(self, name: str) -> bool:
        """Stop the engine called ``name``; False when there was none."""
        with self._engines_lock:
            engine = self._engines.pop(name, None)
        if engine is None:
            return False
        engine.stop()
        print(f"engine {name!r} released", flush=True)
        return True

    def engines(self) -> dict[str, int]:
        """Running engines by name → port."""
        with self._engines_lock:
            return {name: e.port for name, e in self._engines.items() if e.running}

    def stop(self) -> None:
        """Stop every claimed engine, then the hub itself."""
        with self._engines_lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.stop()
        super().stop()
        self.stopped.set()

    def _route(self, path: str, params: dict[str, str], document: Any) -> Reply:
        if not path.startswith(EXTENSION_PREFIX + "/"):
            return super()._route(path, params, document)
        action = path[len(EXTENSION_PREFIX) + 1 :]
        if action == "info":
            body = {"engine": "pytest-commons", "version": __version__, "engines": self.engines()}
            return Reply(200, json.dumps(body))
        if action not in ("engine", "release"):
            return Reply(404, f"unknown pytest-commons extension {path}", "text/plain")
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            raise ModelError("", 'a body {"name": "..."} is required')
        name = document["name"]
        if action == "release":
            return Reply(200 if self.release(name) else 404)
        port = document.get("port", 0)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ModelError("/port", "must be a port number")
        try:
            engine = self.claim(name, port)
        except OSError as exc:
            return Reply(409, f"cannot listen on port {port}: {exc}", "text/plain")
        return Reply(200, json.dumps({"name": name, "port": engine.port}))


def main(argv: list[str] | None = None) -> int:
    """Run a hub until SIGTERM/SIGINT or ``PUT /mockserver/stop``."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_commons.services.mockserver.engine",
        description="pytest-commons' MockServer engine as a server process (loopback only)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (default) or localhost")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument("--max-log-entries", type=int, default=100_000)
    args = parser.parse_args(argv)
    try:
        hub = EngineHub(args.host, args.port, max_log_entries=args.max_log_entries)
    except ValueError as exc:
        parser.error(str(exc))

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=hub.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    hub.start()  # an OSError (port taken) propagates: "Address already in use" in the log
    print(f"pytest-commons MockServer engine {__version__} on {hub.url}", flush=True)
    hub.stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
