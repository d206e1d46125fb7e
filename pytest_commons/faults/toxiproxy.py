"""The Toxiproxy engine: a ``toxiproxy-server`` per run, driven through its HTTP API.

The server is a supervised local process like the services of the local backend: API and
proxies on 127.0.0.1, recorded in the run directory the moment it exists (so the reaper stops it
after ``kill -9``), shared by the run's xdist workers (each proxy is named after its worker and
test), stopped with the run's servers.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from pytest_commons.core.childenv import child_env
from pytest_commons.core.cleanup import adopt
from pytest_commons.core.run import Instance, RunContext
from pytest_commons.errors import read_tail
from pytest_commons.faults.model import FaultError, Toxic, UnknownFault

RECORD = "toxiproxy"
BINARY = "toxiproxy-server"


def find_server(configured: str | None, cache_dir: Path) -> str | None:
    """The toxiproxy-server binary: the configured path, PATH, or ``<cache dir>/bin``."""
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    found = shutil.which(BINARY)
    if found:
        return found
    candidate = cache_dir / "bin" / BINARY
    return str(candidate) if os.access(candidate, os.X_OK) else None


class ToxiproxyError(FaultError):
    pass


class ToxiproxyEngine:
    """Proxies on a Toxiproxy server; see the module docstring."""

    name = "toxiproxy"

    def __init__(self, host: str, port: int, log_path: str = "") -> None:
        self.host, self.port, self.log_path = host, port, log_path
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    # the server ------------------------------------------------------------------------------
    @classmethod
    def for_run(cls, ctx: RunContext, binary: str, timeout: float) -> ToxiproxyEngine:
        """Attach to the run's server, starting it (under the run's lock) if there is none."""
        from pytest_commons.core.host import free_port

        with ctx.lock(RECORD):
            inst = ctx.read(RECORD)
            if inst is not None and inst.ready:
                engine = cls(inst.info["host"], int(inst.info["port"]), inst.log_path)
                if engine._alive():
                    return engine
            if ctx.owner_pid:
                ctx.ensure_reaper()
            sdir = ctx.service_dir(RECORD)
            log_path = str(sdir / "server.log")
            port = free_port()
            argv = [binary, "-host", "127.0.0.1", "-port", str(port)]
            with open(log_path, "ab") as log:
                try:
                    proc = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: stopped as one
                        close_fds=True,
                        cwd=str(sdir),
                        env=child_env(),
                    )
                    adopt(proc)
                except OSError as exc:
                    raise ToxiproxyError(
                        f"faults (toxiproxy engine): could not run {binary}: "
                        f"{exc.strerror or exc}\n"
                        "  remedy: reinstall it (scripts/setup.sh) or use --faults-engine=builtin"
                    ) from None
            inst = Instance(
                service=RECORD,
                backend="local",
                info={"host": "127.0.0.1", "port": port},
                pid=proc.pid,
                argv=argv,
                stop_signal=int(signal.SIGTERM),
                log_path=log_path,
                paths=[str(sdir)],
            )
            ctx.write(inst)
            engine = cls("127.0.0.1", port, log_path)
            started = time.monotonic()
            deadline = started + timeout
            while not engine._alive():
                code = proc.poll()
                if code is not None or time.monotonic() > deadline:
                    from pytest_commons.core.cleanup import kill_process_group

                    kill_process_group(proc.pid, signal.SIGKILL, grace=1.0)
                    ctx.remove(RECORD)
                    what = f"exited with code {code}" if code is not None else "did not answer"
                    raise ToxiproxyError(
                        f"faults (toxiproxy engine): {binary} {what} on 127.0.0.1:{port}\n"
                        f"  last lines of {log_path}:\n"
                        + "\n".join(f"    | {ln}" for ln in read_tail(log_path).splitlines())
                        + "\n  remedy: check the log, or use --faults-engine=builtin"
                    )
                time.sleep(0.01)
            inst.version = engine._request("GET", "/version").get("version", "") or "?"
            inst.ready = True
            inst.startup_seconds = round(time.monotonic() - started, 4)
            ctx.write(inst)
            return engine

    def _alive(self) -> bool:
        try:
            self._request("GET", "/version")
        except (OSError, http.client.HTTPException, ToxiproxyError):
            return False
        return True

    # the API ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        with self._lock:
            for attempt in (0, 1):
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                try:
                    self._conn.request(
                        method, path, body=data, headers={"Content-Type": "application/json"}
                    )
                    response = self._conn.getresponse()
                    raw = response.read()
                    break
                except (OSError, http.client.HTTPException):
                    self._conn.close()
                    self._conn = None
                    if attempt:
                        raise
        text = raw.decode("utf-8", "replace")
        if response.status >= 400:
            try:
                message = json.loads(text).get("error", text)
            except ValueError:
                message = text
            if "invalid toxic type" in message:
                raise UnknownFault(f"faults (toxiproxy engine): {message}")
            raise ToxiproxyError(
                f"faults (toxiproxy engine): {method} {path} → HTTP {response.status}: {message}"
            )
        if path == "/version":
            return {"version": text.strip()} if not text.startswith("{") else json.loads(text)
        return json.loads(text) if text.strip() else None

    def create(self, name: str, upstream: tuple[str, int]) -> tuple[str, int]:
        host, port = upstream
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        made = self._request(
            "POST",
            "/proxies",
            {"name": name, "listen": "127.0.0.1:0", "upstream": target, "enabled": True},
        )
        listen_host, _, listen_port = str(made["listen"]).rpartition(":")
        return listen_host, int(listen_port)

    def delete(self, name: str) -> None:
        try:
            self._request("DELETE", f"/proxies/{name}")
        except ToxiproxyError as exc:
            if "HTTP 404" not in str(exc):
                raise

    def set_enabled(self, name: str, enabled: bool) -> None:
        self._request("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(self, name: str, toxic: Toxic) -> None:
        self._request("POST", f"/proxies/{name}/toxics", toxic.to_api())

    def remove_toxic(self, name: str, toxic_name: str) -> None:
        try:
            self._request("DELETE", f"/proxies/{name}/toxics/{toxic_name}")
        except ToxiproxyError as exc:
            if "HTTP 404" not in str(exc):
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
