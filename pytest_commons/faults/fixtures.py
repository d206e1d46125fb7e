"""The ``faults`` fixtures and the ``--faults-engine`` option (registered with the plugin)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_commons.faults import ENGINES, Engine, FaultError, Faults
from pytest_commons.faults.model import EngineUnavailable
from pytest_commons.plugin import options as _options
from pytest_commons.plugin.state import MISSING_KEY, get_registry

_options.register(
    _options.Option(
        "faults_engine",
        "Engine of the faults fixture's proxies: auto (Toxiproxy when toxiproxy-server is "
        "found, else the built-in asyncio proxy), toxiproxy, builtin.",
        default="auto",
        choices=("auto", *ENGINES),
    )
)
_options.register(
    _options.Option(
        "toxiproxy_server",
        "Path of the toxiproxy-server binary (default: PATH, then <commons cache dir>/bin).",
    )
)

ENGINES_KEY = pytest.StashKey[dict[str, Engine]]()
_COUNTER = itertools.count(1)


def toxiproxy_binary(config: pytest.Config) -> str | None:
    from pytest_commons.faults.toxiproxy import find_server

    run = get_registry(config).config
    return find_server(_options.get(config, "toxiproxy_server"), run.cache_dir())


def choose_engine(config: pytest.Config, wanted: str) -> str:
    """``auto`` → ``toxiproxy`` when its server is found here, else ``builtin``."""
    if wanted == "auto":
        return "toxiproxy" if toxiproxy_binary(config) else "builtin"
    if wanted not in ENGINES:
        raise pytest.UsageError(
            f"pytest-commons: faults engine {wanted!r} is not one of auto, {', '.join(ENGINES)}"
        )
    return wanted


def get_engine(config: pytest.Config, name: str) -> Engine:
    """The process's engine ``name`` (started once); EngineUnavailable when it can't run here."""
    engines = config.stash.setdefault(ENGINES_KEY, {})
    if name in engines:
        return engines[name]
    engine: Engine
    if name == "builtin":
        from pytest_commons.faults.builtin import BuiltinEngine

        engine = BuiltinEngine()
    else:
        from pytest_commons.faults.toxiproxy import ToxiproxyEngine

        binary = toxiproxy_binary(config)
        if binary is None:
            configured = _options.get(config, "toxiproxy_server")
            where = (
                f"--toxiproxy-server={configured} is not an executable file"
                if configured
                else "no toxiproxy-server on PATH or in "
                f"{Path(get_registry(config).config.cache_dir()) / 'bin'}"
            )
            raise EngineUnavailable(
                f"faults: the toxiproxy engine is not available: {where}\n"
                "  remedy: install it with scripts/setup.sh (go install "
                "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0, copied to "
                "toxiproxy-server), set --toxiproxy-server, or use --faults-engine=builtin"
            )
        registry = get_registry(config)
        engine = ToxiproxyEngine.for_run(registry.ctx, binary, registry.config.start_timeout)
    engines[name] = engine
    return engine


@pytest.fixture
def faults_engine(request: pytest.FixtureRequest) -> str:
    """Name of the engine the ``faults`` fixture uses: ``--faults-engine`` (``auto`` resolved).

    Scope: function. Parametrize it (``@pytest.mark.parametrize("faults_engine", ["builtin",
    "toxiproxy"])``) to run a test on both engines.
    """
    return choose_engine(request.config, _options.get(request.config, "faults_engine") or "auto")


@pytest.fixture
def faults(request: pytest.FixtureRequest, faults_engine: str) -> Iterator[Faults]:
    """Fault proxies for this test: ``faults.proxy("redis")`` (or postgres, mysql, mockserver,
    aws, rabbitmq, a URL, a ``(host, port)``) gives a :class:`~pytest_commons.faults.Proxy` on
    127.0.0.1 whose ``.url`` reaches the test's own namespace through it, with methods that add
    faults (``latency``, ``bandwidth``, ``timeout``, ``reset_peer``, ``slicer``, ``limit_data``,
    ``slow_close``, ``add(kind, ...)``) and ``down()``/``up()``. ``faults.proxy("kafka")``
    gives a :class:`~pytest_commons.faults.kafka.KafkaProxy`: a broker of the test's own
    behind the proxy (``.bootstrap_servers``, ``.kafka`` view), stopped at teardown.

    Scope: function; every proxy is deleted at teardown. Cost: the engine starts once per
    process (Toxiproxy: once per run, ≈10 ms), then ≈1 ms per proxy (a Kafka proxy: plus its
    broker, Tansu ≈15 ms, Apache Kafka ≈1 s); a proxied round trip with no fault adds ≈0.1 ms
    (docs/benchmarks-faults.md). An engine that can't run here skips the
    test with the reason (fails under ``--services-missing=fail``).
    """
    config = request.config
    engine_name = choose_engine(config, faults_engine)
    message = ""
    try:
        engine = get_engine(config, engine_name)
    except EngineUnavailable as exc:
        message = str(exc)
    except FaultError as exc:
        pytest.fail(str(exc), pytrace=False)
    if message:
        if config.stash.get(MISSING_KEY, "skip") == "skip":
            pytest.skip(message)
        pytest.fail(
            message + "\n  (failing because --services-missing=fail, the default when $CI is set)",
            pytrace=False,
        )
    ctx = get_registry(config).ctx
    prefix = f"{ctx.run_id}-{ctx.worker_id}-{os.getpid()}-{next(_COUNTER)}"
    box = Faults(engine, prefix, request)
    yield box
    box.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop this process's engines (the run's Toxiproxy server is stopped with its services)."""
    for engine in config.stash.get(ENGINES_KEY, {}).values():
        engine.close()
    if ENGINES_KEY in config.stash:
        del config.stash[ENGINES_KEY]
