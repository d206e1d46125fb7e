"""MockServer fixtures: the session instance, the official client reset before each test.

Isolation: on the local backend every pytest process (each xdist worker) claims an engine of
its own from the run's engine process, so the per-test reset never touches another worker.
A Docker or external MockServer is one server for the whole run: there, under xdist, a test
using these fixtures holds a run-wide lock from its reset to its end, so tests that use
MockServer run one at a time while the rest of the suite stays parallel.

``mockserver-client`` ships its own pytest plugin (entry point ``mockserver``) with fixtures of
the same names. While pytest-commons is active, the names are ours, whatever the plugin load
order: the other plugin is blocked if it has not been loaded yet, and if it has (``-p
mockserver``), our fixture definitions are registered again after it, so ours win. Theirs
would download and launch a MockServer binary; ours never do. ``-p no:commons`` gives the
names back to it.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.plugin.state import get_registry, service_handle
from pytest_commons.services.mockserver.spec import MockServerInfo, MockServerSpec, close_client

if TYPE_CHECKING:
    from mockserver import AsyncMockServerClient, MockServerClient

    from pytest_commons.core.lock import FileLock

__all__ = [
    "mockserver",
    "mockserver_async",
    "mockserver_host",
    "mockserver_port",
    "mockserver_server",
    "mockserver_service",
    "mockserver_url",
]

#: the entry-point name of mockserver-client's own pytest plugin
CLIENT_PLUGIN = "mockserver"
_PRECEDENCE = f"{__name__}.precedence"


# plugin coexistence -------------------------------------------------------------------------
def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Runs as this module registers: keep mockserver-client's plugin from loading after us."""
    if pluginmanager.get_plugin(CLIENT_PLUGIN) is None:
        pluginmanager.set_blocked(CLIENT_PLUGIN)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """If mockserver-client's plugin was loaded anyway (``-p mockserver``), register our
    fixtures once more so that their definitions come after its (the last one wins)."""
    pm = config.pluginmanager
    if pm.get_plugin(CLIENT_PLUGIN) is None or pm.get_plugin(_PRECEDENCE) is not None:
        return
    holder = types.ModuleType(_PRECEDENCE, "pytest-commons' MockServer fixtures, re-asserted")
    module = sys.modules[__name__]
    for name in __all__:
        setattr(holder, name, getattr(module, name))
    pm.register(holder, _PRECEDENCE)


# the instance -------------------------------------------------------------------------------
class WorkerMockServer(ServiceHandle[MockServerInfo]):
    """The run's engine process seen from one pytest process: ``.info`` is this process's own
    engine (claimed from the shared process), everything else is the shared handle's."""

    def __init__(self, shared: ServiceHandle[MockServerInfo], name: str, ctx: Any) -> None:
        from pytest_commons.backends.base import get_backend

        spec = shared.spec
        super().__init__(spec, get_backend(shared.backend, spec.run_config), shared.instance, ctx)
        self.engine_name = name
        self._hub = shared.info
        self._engine = self._spec.claim_engine(self._hub, name)

    @property
    def _spec(self) -> MockServerSpec:
        assert isinstance(self.spec, MockServerSpec)
        return self.spec

    @property
    def info(self) -> MockServerInfo:
        """This process's engine (host, port, ``.url``)."""
        return self._engine

    @property
    def hub(self) -> MockServerInfo:
        """The shared engine process that hands out the per-process engines."""
        return self._hub

    def reclaim(self) -> None:
        """Get this process's engine back (same port) after the engine process restarted."""
        self._engine = self._spec.claim_engine(self._hub, self.engine_name, self._engine.port)

    def start(self) -> None:
        """Start the stopped engine process again, with this process's engine on its port."""
        super().start()
        self.reclaim()

    def release(self) -> None:
        # the engine process may be gone already (it is stopped after the run anyway)
        with contextlib.suppress(OSError):
            self._spec.release_engine(self._hub, self.engine_name)


@pytest.fixture(scope="session")
def mockserver_service(request: pytest.FixtureRequest) -> Iterator[ServiceHandle[MockServerInfo]]:
    """The run's MockServer: a handle with ``.info`` (``host``, ``port``, ``.url``),
    ``.backend``, ``.version`` (``commons-engine 0.1.0``, ``mockserver 5.15.0``,
    ``mockserver-api``) and fault injection (``stop/start/restart/pause/resume``).

    On the local backend ``.info`` is this pytest process's own engine, claimed from the run's
    engine process (shared by all xdist workers); on Docker or an external URL it is the one
    shared server. Scope: session. Cost: local engine process ready in ≈60-150 ms (begun in the
    background after collection), claiming this process's engine ≈1 ms.
    """
    handle: ServiceHandle[MockServerInfo] = service_handle(request, "mockserver")
    spec = handle.spec
    if not (isinstance(spec, MockServerSpec) and spec.is_hub(handle.version)):
        yield handle
        return
    ctx = get_registry(request.config).ctx
    try:
        worker = WorkerMockServer(handle, f"{ctx.run_id}/{ctx.worker_id}", ctx)
    except Exception as exc:  # reported with the remedy, no traceback
        pytest.fail(
            f"mockserver ({handle.backend} backend): claiming an engine for worker "
            f"{ctx.worker_id} from {handle.info.url} failed: {exc}\n  last lines of the "
            f"engine log:\n{_indent(handle.logs())}",
            pytrace=False,
        )
    yield worker
    worker.release()


def _indent(text: str, lines: int = 15) -> str:
    tail = text.rstrip().splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in tail) or "    | (empty)"


@pytest.fixture(scope="session")
def _mockserver_lock(
    request: pytest.FixtureRequest, mockserver_service: ServiceHandle[MockServerInfo]
) -> FileLock | None:
    """A run-wide lock for a server shared by several xdist workers (None when not needed)."""
    ctx = get_registry(request.config).ctx
    if isinstance(mockserver_service, WorkerMockServer) or ctx.worker_count < 2:
        return None
    from pytest_commons.core.lock import FileLock

    return FileLock(str(ctx.run_dir / "mockserver-exclusive.lock"))


@pytest.fixture
def _mockserver_clean(
    mockserver_service: ServiceHandle[MockServerInfo], _mockserver_lock: FileLock | None
) -> Iterator[MockServerInfo]:
    """This test's MockServer, reset (and, on a shared server under xdist, held exclusively)."""
    if _mockserver_lock is not None:
        _mockserver_lock.acquire()
    try:
        _reset(mockserver_service)
        yield mockserver_service.info
    finally:
        if _mockserver_lock is not None:
            _mockserver_lock.release()


def _reset(handle: ServiceHandle[MockServerInfo]) -> None:
    spec = handle.spec
    assert isinstance(spec, MockServerSpec)
    try:
        try:
            spec.reset(handle.info)
        except OSError:
            if not isinstance(handle, WorkerMockServer):
                raise
            handle.reclaim()  # the engine process was restarted (fault injection)
            spec.reset(handle.info)
    except Exception as exc:  # reported with the remedy, no traceback
        pytest.fail(
            f"mockserver ({handle.backend} backend): resetting {handle.info.url} before the "
            f"test failed: {exc}\n  remedy: is the server still running? (a test that "
            "stopped it must start it again)",
            pytrace=False,
        )


@pytest.fixture
def mockserver(_mockserver_clean: MockServerInfo) -> Iterator[MockServerClient]:
    """The official ``mockserver.MockServerClient`` bound to this test's MockServer, which was
    reset (no expectations, empty request log) just before the test.

    Scope: function (a fresh client per test, closed after it). Cost: one reset (≈1 ms) plus
    ≈0.5 ms for the client.
    """
    from mockserver import MockServerClient

    client = MockServerClient(_mockserver_clean.host, _mockserver_clean.port)
    try:
        yield client
    finally:
        close_client(client)


@pytest.fixture
def mockserver_async(_mockserver_clean: MockServerInfo) -> AsyncMockServerClient:
    """The official ``mockserver.AsyncMockServerClient`` bound to this test's MockServer,
    reset just before the test (await its methods in an async test, or ``asyncio.run``).

    Scope: function. Cost: one reset (≈1 ms).
    """
    from mockserver import AsyncMockServerClient

    return AsyncMockServerClient(_mockserver_clean.host, _mockserver_clean.port)


@pytest.fixture
def mockserver_url(_mockserver_clean: MockServerInfo) -> str:
    """``http://host:port`` of this test's MockServer (point the code under test at it),
    reset just before the test. Scope: function. Cost: one reset (shared with ``mockserver``).
    """
    return _mockserver_clean.url


# the names mockserver-client's plugin uses, for tests written against it -----------------------
@pytest.fixture(scope="session")
def mockserver_server(mockserver_service: ServiceHandle[MockServerInfo]) -> tuple[str, int]:
    """``(host, port)`` of this process's MockServer, as mockserver-client's plugin gives it
    (no reset; ``mockserver`` resets). Scope: session. Cost: none."""
    info = mockserver_service.info
    return info.host, info.port


@pytest.fixture
def mockserver_host(mockserver_server: tuple[str, int]) -> str:
    """The host of this process's MockServer (mockserver-client's plugin name)."""
    return mockserver_server[0]


@pytest.fixture
def mockserver_port(mockserver_server: tuple[str, int]) -> int:
    """The port of this process's MockServer (mockserver-client's plugin name)."""
    return mockserver_server[1]
