"""Shared helpers for the project's own tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytester's in-process runs (the coverage-gate tests) drop the modules first imported inside
# them. httpx imports httpcore lazily and maps its exceptions by class, once: an httpcore first
# imported inside such a run, dropped, and imported again later raises exceptions httpx no
# longer maps (a raw httpcore.ConnectError escaped pytest.raises(httpx.ConnectError) in a CI
# run, seed 653773662). Imported here, it is one module for the whole session.
with contextlib.suppress(ImportError):
    import httpcore  # noqa: F401

# inner pytest runs must not inherit the outer run's choices
_INNER_ENV_PREFIXES = ("PYTEST_COMMONS_", "PYTEST_XDIST_", "PYTEST_ADDOPTS")
# The project's own tests run in random order (pytest-randomly, seed in the header); the
# suites that pytester runs inside them are test data whose order is part of what they
# check (a test writes, the next one looks), so inner runs keep the order they are written in.
INNER_ADDOPTS = "-p no:randomly"
# Plugins of the full install (`.[all,dev]`) that no inner suite needs, except in the modules
# that say ``INNER_ALL_PLUGINS = True`` (the data, pact and MockServer plugin tests, which check
# how ours lives beside them): loading them was ≈45 % of a one-test inner run's CPU (3.4 s ->
# 1.9 s of user CPU on a slow machine), and the project's tests make hundreds of inner runs.
INNER_BLOCKED = (
    "-p no:schemathesis -p no:pact -p no:pytest_postgresql -p no:pytest_redis -p no:mockserver"
)


def inner_addopts(request: pytest.FixtureRequest) -> str:
    """``PYTEST_ADDOPTS`` for the inner runs of the requesting test's module."""
    if getattr(request.module, "INNER_ALL_PLUGINS", False):
        return INNER_ADDOPTS
    return f"{INNER_ADDOPTS} {INNER_BLOCKED}"


@pytest.fixture
def pytester(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> pytest.Pytester:
    """pytest's ``pytester``, whose inner runs keep their tests in file order."""
    monkeypatch.setenv("PYTEST_ADDOPTS", inner_addopts(request))  # pytester itself clears it
    return pytester


@pytest.fixture(autouse=True)
def _settled_services(request: pytest.FixtureRequest) -> None:
    """Before a test that may change the environment (it uses ``monkeypatch``), waits until this
    session's own background service starts have ended.

    A start reads the environment while it runs (``DOCKER_HOST``, ``PATH``): a test must not
    change it under them. (A start once pulled every default image from a test's fake Docker
    engine, CI seed 712459691; an empty ``PATH`` would fail a local start for the session.)
    Free once the starts have ended.
    """
    if "monkeypatch" not in request.fixturenames:
        return
    from pytest_commons.plugin.state import REGISTRY_KEY

    registry = request.config.stash.get(REGISTRY_KEY, None)
    if registry is not None:
        registry.settle()


@pytest.fixture
def clean_env(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> pytest.MonkeyPatch:
    """Removes pytest-commons settings (and CI) from the environment for an inner run."""
    for name in list(os.environ):
        if name.startswith(_INNER_ENV_PREFIXES) or name == "CI":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_ADDOPTS", inner_addopts(request))
    return monkeypatch


@pytest.fixture
def private_runtime(clean_env: pytest.MonkeyPatch) -> Iterator[Path]:
    """A runtime directory of this test's own for its inner runs (``$PYTEST_COMMONS_RUNTIME_DIR``):
    kept services of other tests are not its, and the servers' own user may enter it
    (pytester's directory is private to root). What the inner runs kept is stopped after."""
    import shutil
    import tempfile

    from tests.helpers import commons_cli

    runtime = Path(tempfile.mkdtemp(prefix="pc-runtime-"))
    runtime.chmod(0o711)
    clean_env.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(runtime))
    try:
        yield runtime
    finally:
        commons_cli("down")
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def barrier(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    """A directory where the workers of an inner xdist run meet (``$BARRIER_DIR``): each
    writes a file there and waits for the other's, so both act at the same time."""
    path = tmp_path / "barrier"
    path.mkdir()
    clean_env.setenv("BARRIER_DIR", str(path))
    return path


@pytest.fixture
def outer_services_settled(request: pytest.FixtureRequest) -> None:
    """For tests that change PATH, sys.path or PYTEST_COMMONS_* for the whole process: first
    lets the services this (outer) run is starting in the background come up, so that they do
    not pick up the stand-ins meant for the test."""
    import contextlib

    from pytest_commons.plugin.state import get_registry
    from pytest_commons.services import SERVICES

    registry = get_registry(request.config)
    for name in SERVICES:
        if registry.status(name) != "not requested":
            with contextlib.suppress(Exception):
                registry.get(name)


ALEMBIC_ENV_PY = """
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
engine = engine_from_config(
    config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
    poolclass=pool.NullPool,
)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""


@pytest.fixture
def alembic_env_py() -> str:
    """The text of a minimal Alembic ``env.py`` (online migrations, no metadata)."""
    return ALEMBIC_ENV_PY


@pytest.fixture(autouse=True)
def _pin_mockserver_divergences(request: pytest.FixtureRequest) -> None:
    """The MockServer suites run on either engine and on any backend; on the real MockServer a
    test that records a known divergence of the engine is a strict xfail
    (tests/engines/mockserver_divergences.py), so one that goes away fails the run."""
    name = request.node.path.name
    if name not in ("test_mockserver_protocol.py", "test_mockserver.py"):
        return
    from tests.engines.mockserver_divergences import JAVA, JAVA_FIXTURES

    table = JAVA if name == "test_mockserver_protocol.py" else JAVA_FIXTURES
    reason = table.get(getattr(request.node, "originalname", request.node.name))
    if reason is None:
        return
    if name == "test_mockserver_protocol.py":
        real = request.getfixturevalue("engine_name") == "java"
    else:
        real = request.getfixturevalue("mockserver_service").version.startswith("mockserver ")
    if real:
        mark = pytest.mark.xfail(strict=True, reason=f"differs on MockServer 5.15.0: {reason}")
        request.applymarker(mark)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; whatever is left is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)
