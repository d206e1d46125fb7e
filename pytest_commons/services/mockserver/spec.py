"""MockServer: connection info, readiness probe, and the engines per backend.

* local, two engines (``--mockserver-engine=auto|java|commons``):

  - ``commons``: pytest-commons' own engine (:mod:`pytest_commons.services.mockserver.engine`), run
    as one supervised process per test run (``python -m pytest_commons.services.mockserver.engine``,
    ready in tens of milliseconds). That process is a *hub*: each pytest process (each xdist
    worker) claims an engine of its own from it, so per-test resets never touch another worker.
  - ``java``: the real MockServer 5.15.0 (``mockserver-netty-no-dependencies``, pinned by
    SHA-256, put in the cache by ``pytest-commons fetch mockserver``), one JVM per run bound to
    127.0.0.1, shared by the xdist workers (tests that use it take turns, see the fixtures).
  - ``auto`` (the default): ``java`` when a Java ≥ 8 runtime is found and the jar is in the
    cache, else ``commons``. Nothing on the default path needs Java.
* docker: the official ``mockserver/mockserver`` image (container port 1080).
* external: ``PYTEST_COMMONS_MOCKSERVER_URL=http://host:port``.

Everything here speaks MockServer's REST API over plain HTTP with the standard library, so
the probe costs no import beyond ``http.client``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_commons.core.childenv import child_env
from pytest_commons.core.config import RunConfig
from pytest_commons.core.java import MavenArtifact, java_binary, java_major
from pytest_commons.errors import NotReady, ProbeRefused
from pytest_commons.services.base import ConnectionInfo, DockerLaunch, LocalLaunch, ServiceSpec
from pytest_commons.services.mockserver import MockServerConfig

if TYPE_CHECKING:
    from mockserver import MockServerClient

MOCKSERVER_PORT = 1080
#: the real MockServer the ``java`` engine runs (its classes are Java 8 bytecode)
MOCKSERVER_JAR = MavenArtifact(
    group="org.mock-server",
    artifact="mockserver-netty-no-dependencies",
    version="5.15.0",
    sha256="866bd44bfda37a3dc7d95f89c3abb34175dab5014326cd74b3e03fd023eddebf",
)
JAVA_MIN = 8
ENGINES = ("auto", "java", "commons")
#: JVM flags for a fast start of a short-lived test server (C1 only, serial GC, shared
#: class data), and MockServer properties: loopback only, no proxying of unmatched requests
#: to the outside world, quiet log
JAVA_FLAGS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xshare:auto",
    "-Xss512k",
    "-Xmx256m",
    "-Dmockserver.localBoundIP=127.0.0.1",
    "-Dmockserver.attemptToProxyIfNoMatchingExpectation=false",
    "-Dmockserver.logLevel=WARN",
    "-Dmockserver.outputMemoryUsageCsv=false",
)
INSTALL_HINT = 'pip install "pytest-commons[mockserver]"'
EXTENSION_PREFIX = "/mockserver/pytestCommons"
#: ``.version`` of pytest-commons' engine; followed by `` <version>`` on a hub (the local
#: backend's process, which hands out per-process engines)
ENGINE_VERSION = "commons-engine"
#: the docker image of pytest-commons' engine (``containers/build.sh``)
ENGINE_IMAGE = "pytest-commons/mockserver:engine"
_ENGINE_501_TEXT = "not supported by the pytest-commons MockServer engine"


@dataclass(frozen=True, repr=False)
class MockServerInfo(ConnectionInfo):
    """Where a MockServer (or the pytest-commons engine) listens: ``host``, ``port``, ``.url``."""

    @property
    def url(self) -> str:
        """``http://host:port`` (mocked traffic and the control plane share it)."""
        return f"http://{self.address}"

    def describe(self) -> str:
        return self.url


class MockServerHTTPError(Exception):
    """A control-plane call answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        self.status, self.body = status, body
        text = body[:300].decode("utf-8", "replace")
        super().__init__(f"{method} {url} answered HTTP {status}: {text}")


def control(
    info: MockServerInfo,
    path: str,
    body: Any = None,
    *,
    timeout: float = 10.0,
    expect: tuple[int, ...] = (200,),
) -> tuple[int, dict[str, str], bytes]:
    """``PUT path`` on the control plane; returns (status, lower-cased headers, body).

    Raises :class:`OSError` when the server cannot be reached and
    :class:`MockServerHTTPError` when the status is not in ``expect`` (``()``: any status).
    """
    import http.client  # here, not at module level: the plugin loads this module at start

    data = b"" if body is None else json.dumps(body).encode()
    conn = http.client.HTTPConnection(info.host, info.port, timeout=timeout)
    try:
        conn.request(
            "PUT", path, body=data, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        resp = conn.getresponse()
        payload = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        status = int(resp.status)
    finally:
        conn.close()
    if expect and status not in expect:
        raise MockServerHTTPError("PUT", f"{info.url}{path}", status, payload)
    return status, headers, payload


def close_client(client: Any) -> None:
    """Close an official ``mockserver.MockServerClient`` *and* the event loop it runs on.

    ``MockServerClient.close()`` (mockserver-client 9.2) stops the loop thread it started in
    its constructor but never closes the loop, so the loop and its self-pipe sockets are left
    for the garbage collector, which reports them as ``ResourceWarning: unclosed event loop``
    (an error under ``filterwarnings = error``) in whichever test happens to run then. Use
    this instead of ``client.close()`` (or ``with MockServerClient(...)``).
    """
    client.close()
    loop = getattr(client, "_loop", None)
    thread = getattr(client, "_thread", None)
    if thread is not None:
        thread.join()
    if loop is not None and not loop.is_closed() and not loop.is_running():
        loop.close()


@contextlib.contextmanager
def open_client(host: str, port: int) -> Iterator[MockServerClient]:
    """An official ``mockserver.MockServerClient`` for ``host:port``, closed on exit together
    with its event loop (see :func:`close_client`)."""
    from mockserver import MockServerClient

    client = MockServerClient(host, port)
    try:
        yield client
    finally:
        close_client(client)


def fetch_jar(settings: RunConfig, use_mvn: bool | None = None) -> Path:
    """``pytest-commons fetch mockserver``: the pinned MockServer jar into the cache, then
    (when Java is here) a class-data archive of a started server next to it."""
    from pytest_commons.core.java import fetch

    jar = fetch(MOCKSERVER_JAR, settings.cache_dir(), use_mvn=use_mvn)
    binary = java_binary()
    if binary is not None and (java_major(binary) or 0) >= 13:
        build_class_archive(binary, jar)
    return jar


def class_archive(binary: str, jar: Path) -> Path:
    """Where the dynamic class-data archive for this JVM and jar lives (it may not exist)."""
    return jar.with_name(f"{jar.stem}.java{java_major(binary)}.jsa")


def build_class_archive(binary: str, jar: Path, timeout: float = 120.0) -> Path | None:
    """Start MockServer once with ``-XX:ArchiveClassesAtExit`` and stop it after it answered,
    so that later starts map the classes it loaded (≈25% faster here). None when the JVM
    could not make one (the launch then goes without; nothing depends on it)."""
    import subprocess
    import time

    from pytest_commons.core.host import free_port

    target = class_archive(binary, jar)
    if target.is_file():
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    port = free_port()
    argv = [binary, *JAVA_FLAGS, f"-XX:ArchiveClassesAtExit={tmp}", "-jar", str(jar)]
    proc = subprocess.Popen(
        [*argv, "-serverPort", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(),
    )
    info = MockServerInfo(host="127.0.0.1", port=port)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                control(info, "/mockserver/status", timeout=2)
            except (OSError, MockServerHTTPError):
                time.sleep(0.1)
                continue
            # load what a test run loads: an expectation, a match, a retrieve
            warm = {"httpRequest": {"path": "/w"}, "httpResponse": {"body": "w"}}
            control(info, "/mockserver/expectation", warm, expect=())
            control(info, "/mockserver/retrieve?type=active_expectations", expect=())
            break
    finally:
        proc.terminate()  # a normal exit writes the archive
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.returncode not in (0, 143, -15) or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, target)
    return target


class MockServerSpec(ServiceSpec[MockServerInfo]):
    """MockServer on the pytest-commons engine (local), the official image (docker) or a URL."""

    config: MockServerConfig

    name = "mockserver"
    info_type = MockServerInfo
    install_hint = INSTALL_HINT

    def check_driver(self) -> str | None:
        try:
            found = importlib.util.find_spec("mockserver")
        except (ImportError, ValueError):
            found = None
        if found is None:
            return f"the official client mockserver-client is not installed ({INSTALL_HINT})"
        return None

    # external -------------------------------------------------------------------------------
    def parse_url(self, url: str) -> MockServerInfo:
        parts = urlsplit(url.strip())
        if parts.scheme == "https":
            raise ValueError(
                "https:// is not supported; MockServer answers plain HTTP on the same port, "
                "use http://"
            )
        if parts.scheme != "http":
            raise ValueError(f"scheme must be http://, got {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("no host")
        try:
            port = parts.port or MOCKSERVER_PORT
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        if parts.path.strip("/"):
            raise ValueError(
                f"a context path ({parts.path!r}) is not supported; give http://host:port"
            )
        if parts.query or parts.fragment or parts.username:
            raise ValueError("the URL takes no credentials, query or fragment")
        return MockServerInfo(host=parts.hostname, port=port)

    # readiness ------------------------------------------------------------------------------
    def probe(self, info: MockServerInfo, timeout: float) -> str:
        """``PUT /mockserver/status``; then which server it is (the version string).

        ``commons-engine 0.1.0`` for the local backend's process (a hub), ``commons-engine``
        for an engine started some other way (``MockServerEngine`` in a test process),
        ``mockserver 5.15.0`` when a real MockServer names its version, else
        ``mockserver-api``.
        """
        import http.client

        timeout = min(timeout, 5.0)
        try:
            status, headers, body = control(info, "/mockserver/status", timeout=timeout, expect=())
        except (OSError, http.client.HTTPException) as exc:
            raise NotReady(f"{info.url}: {exc}") from None
        if status >= 500:
            raise NotReady(f"PUT /mockserver/status answered HTTP {status}")
        if status in (401, 403):
            raise ProbeRefused(
                f"{info.url} requires control-plane authentication (HTTP {status}); "
                "pytest-commons talks to MockServer without credentials"
            )
        try:
            ports = json.loads(body or b"null").get("ports")
        except (ValueError, AttributeError):
            ports = None
        if status != 200 or not isinstance(ports, list):
            raise ProbeRefused(
                f"{info.url} is not a MockServer: PUT /mockserver/status answered HTTP {status} "
                f"{body[:120]!r} (expected 200 with {{'ports': [...]}})"
            )
        return self.flavour(info, headers, timeout)

    def flavour(self, info: MockServerInfo, headers: dict[str, str], timeout: float) -> str:
        import http.client

        try:
            status, _, body = control(info, f"{EXTENSION_PREFIX}/info", timeout=timeout, expect=())
        except (OSError, http.client.HTTPException):
            status, body = 0, b""
        if status == 200:
            try:
                data = json.loads(body)
            except ValueError:
                data = {}
            if isinstance(data, dict) and data.get("engine") == "pytest-commons":
                return f"{ENGINE_VERSION} {data.get('version', '?')}"
        if status == 501 and _ENGINE_501_TEXT.encode() in body:
            return ENGINE_VERSION
        version = headers.get("version") or headers.get("x-mockserver-version")
        return f"mockserver {version}" if version else "mockserver-api"

    @staticmethod
    def is_hub(version: str) -> bool:
        """True when an instance with this ``.version`` hands out per-process engines."""
        return version.startswith(ENGINE_VERSION + " ")

    def claim_engine(self, hub: MockServerInfo, name: str, port: int = 0) -> MockServerInfo:
        """An engine of this process's own from the hub (``port`` re-claims a known one)."""
        _, _, body = control(hub, f"{EXTENSION_PREFIX}/engine", {"name": name, "port": port})
        return MockServerInfo(host=hub.host, port=int(json.loads(body)["port"]))

    def release_engine(self, hub: MockServerInfo, name: str) -> None:
        control(hub, f"{EXTENSION_PREFIX}/release", {"name": name}, timeout=5, expect=())

    def reset(self, info: MockServerInfo, timeout: float = 10.0) -> None:
        """``PUT /mockserver/reset``: forget every expectation and logged request."""
        control(info, "/mockserver/reset", timeout=timeout)

    # local ----------------------------------------------------------------------------------
    def engine(self) -> tuple[str, str]:
        """(``java`` or ``commons``, why) for the local backend, from ``mockserver_engine``."""
        wanted = self.config.engine.strip().lower()
        if wanted not in ENGINES:
            raise ValueError(
                f"mockserver_engine={wanted!r} is not one of {', '.join(ENGINES)} "
                "(--mockserver-engine, $PYTEST_COMMONS_MOCKSERVER_ENGINE or ini mockserver_engine)"
            )
        if wanted == "commons":
            return "commons", "mockserver_engine=commons"
        if wanted == "java":
            return "java", "mockserver_engine=java"
        missing = self.java_missing()
        if missing:
            return "commons", f"auto: {missing}"
        return "java", "auto: Java and the MockServer jar are here"

    def java_missing(self) -> str:
        """Why the real MockServer cannot run here ("" when it can)."""
        binary = java_binary()
        if binary is None:
            return "no Java runtime (java on PATH or $JAVA_HOME)"
        major = java_major(binary)
        if major is None or major < JAVA_MIN:
            return f"{binary} is Java {major or '?'}; MockServer 5.15 needs Java {JAVA_MIN}+"
        if not MOCKSERVER_JAR.present(self.run_config.cache_dir()):
            return (
                f"{MOCKSERVER_JAR.filename} is not in the cache "
                f"({MOCKSERVER_JAR.cached(self.run_config.cache_dir())})"
            )
        return ""

    def local_unavailable(self) -> tuple[str, str] | None:
        try:
            engine, _ = self.engine()
        except ValueError as exc:
            return str(exc), "use auto, java or commons"
        missing = self.java_missing() if engine == "java" else ""
        if missing:
            return (
                f"mockserver_engine=java, but {missing}",
                "run `pytest-commons fetch mockserver` (needs Java 8+ and Maven Central), or "
                "use --mockserver-engine=commons",
            )
        return None  # the commons engine is part of pytest-commons (standard library only)

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        engine, _ = self.engine()
        info = MockServerInfo(host="127.0.0.1", port=port).to_dict()
        if engine == "java":
            binary = java_binary()
            assert binary is not None
            jar = MOCKSERVER_JAR.cached(self.run_config.cache_dir())
            archive = class_archive(binary, jar)
            cds = [f"-XX:SharedArchiveFile={archive}"] if archive.is_file() else []
            return LocalLaunch(
                argv=[binary, *JAVA_FLAGS, *cds, "-jar", str(jar), "-serverPort", str(port)],
                info=info,
                env={},
                stop_signal=signal.SIGKILL,
                graceful_signal=signal.SIGTERM,
                port_in_use_markers=("Address already in use", "BindException"),
            )
        argv = [
            sys.executable,
            "-m",
            "pytest_commons.services.mockserver.engine",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return LocalLaunch(
            argv=argv,
            info=info,
            env={"PYTHONUNBUFFERED": "1"},
            stop_signal=signal.SIGTERM,
            graceful_signal=signal.SIGTERM,
            port_in_use_markers=("Address already in use",),
        )

    # docker -----------------------------------------------------------------------------------
    def docker_image(self) -> str:
        """``mockserver_image`` if set; else, under ``mockserver_engine=commons``, the image of
        pytest-commons' engine (built from a clone by ``containers/build.sh``: it is
        on no registry); else the real MockServer's (``auto`` and ``java``)."""
        if self.config.explicit_image:
            return self.config.explicit_image
        wanted = self.config.engine.strip().lower()
        return ENGINE_IMAGE if wanted == "commons" else self.meta.default_image

    def docker_launch(self, image: str) -> DockerLaunch:
        # the official image reads MOCKSERVER_* properties from the environment
        return DockerLaunch(
            image=image,
            container_port=MOCKSERVER_PORT,
            env={
                "MOCKSERVER_SERVER_PORT": str(MOCKSERVER_PORT),
                "MOCKSERVER_LOG_LEVEL": "WARN",
            },
        )

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> MockServerInfo:
        return MockServerInfo(host=host, port=port)
