#!/usr/bin/env python3
"""One pytest-commons MockServer engine on 0.0.0.0:$MOCKSERVER_SERVER_PORT, until SIGTERM/SIGINT.

Inside the container the engine must listen on the container's interface (the published port
reaches it there, not on the container's loopback); the engine itself only accepts loopback
hosts, so this launcher adds 0.0.0.0 to its allowed hosts. The host side of the published port
is still 127.0.0.1 only (pytest-commons' docker backend binds it so).

A plain engine, not the local backend's hub: the hub's per-process engines would listen on
ports nobody published. Environment (the official image's names):
  MOCKSERVER_SERVER_PORT        port (default 1080)
  MOCKSERVER_MAX_LOG_ENTRIES    request log size (default 100000)
"""

import os
import signal
import sys
import threading

from pytest_commons import __version__
from pytest_commons.services.mockserver.engine import server

server._ALLOWED_HOSTS["0.0.0.0"] = "0.0.0.0"  # type: ignore[index]

port = int(os.environ.get("MOCKSERVER_SERVER_PORT") or 1080)
max_log = int(os.environ.get("MOCKSERVER_MAX_LOG_ENTRIES") or 100_000)
engine = server.MockServerEngine("0.0.0.0", port, max_log_entries=max_log)
stopped = threading.Event()


def _stop(signum: int, frame: object) -> None:
    stopped.set()


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)
engine.start()
print(f"pytest-commons MockServer engine {__version__} started on port: {port}", flush=True)
stopped.wait()
engine.stop()
sys.exit(0)
