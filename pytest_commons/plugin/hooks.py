"""pytest-commons' pytest plugin: options, markers, collection, reporting, xdist coordination.

Fixtures live in the service packages (:mod:`pytest_commons.services`); drivers,
testcontainers and boto3 are imported only when a test asks for a service, so loading this
plugin costs next to nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_commons.core.config import RunConfig
from pytest_commons.core.registry import Registry
from pytest_commons.core.run import RunContext, stale_runs
from pytest_commons.plugin import options as _options
from pytest_commons.plugin import progress as _progress
from pytest_commons.plugin.settings import Settings
from pytest_commons.plugin.state import MISSING_KEY, REGISTRY_KEY
from pytest_commons.services import SERVICES

#: the plugin modules that are not a service's: registered after the services' own
SHARED_MODULES = (
    "pytest_commons.sql.fixtures",
    "pytest_commons.data.fixtures",
    "pytest_commons.plugin.aio",
    "pytest_commons.live",
    "pytest_commons.plugin.timeout",
    "pytest_commons.plugin.report",
    "pytest_commons.pact.plugin",
    "pytest_commons.faults.fixtures",
)


def fixture_modules() -> list[str]:
    """Every module the plugin registers: each service's fixture modules, then the shared ones."""
    return [m for meta in SERVICES.values() for m in meta.fixtures] + list(SHARED_MODULES)


OWNER_KEY = pytest.StashKey[bool]()
COMPLETE_KEY = pytest.StashKey[bool]()  # the session ran to its end (not interrupted)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the fixture modules as this plugin registers.

    Not through ``pytest_plugins``: pytest resolves each name listed there against every
    installed distribution's entry points first (one metadata scan per module).
    """
    import importlib

    for name in fixture_modules():
        if pluginmanager.get_plugin(name) is None and not pluginmanager.is_blocked(name):
            pluginmanager.register(importlib.import_module(name), name)


def pytest_addoption(parser: pytest.Parser) -> None:
    _options.add_options(parser)


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("commons_services_doctor", default=None):
        from pytest_commons.cli import _print_doctor, doctor_exit_code, doctor_report

        report = doctor_report(_settings(config))
        _print_doctor(report)
        return doctor_exit_code(report)  # 1: a service the settings ask for can't be served
    return None


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _lists_only(config: pytest.Config) -> bool:
    """``--collect-only``, ``--fixtures``, ``--fixtures-per-test``: runs that run no test, and
    so start no service. (``--help`` and ``--markers`` end before a session starts.)"""
    option = config.option
    return bool(
        getattr(option, "collectonly", False)
        or getattr(option, "showfixtures", False)
        or getattr(option, "show_fixtures_per_test", False)
    )


_SETTINGS_KEY = pytest.StashKey[Settings]()


def _settings(config: pytest.Config) -> Settings:
    """The run's settings, resolved once: a test that changes the environment (pytester moves
    HOME, monkeypatch sets PYTEST_COMMONS_*) never changes what the run's services are started
    with, whenever they start."""
    cached = config.stash.get(_SETTINGS_KEY, None)
    if cached is not None:
        return cached
    values = {key: _options.get(config, key) for key in _options.OPTIONS}
    sources = {key: _options.source(config, key) for key in _options.OPTIONS}
    live = Settings(values.__getitem__, sources.__getitem__)
    if not values.get("commons_cache_dir"):
        values["commons_cache_dir"] = str(live.cache_dir())  # HOME as it is now, not later
    settings = Settings(values.__getitem__, sources.__getitem__)
    config.stash[_SETTINGS_KEY] = settings
    return settings


def run_config(config: pytest.Config) -> RunConfig:
    """The run's frozen, typed config (:func:`_settings`, resolved once)."""
    return _settings(config).run_config()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    from pytest_commons.core import lock as _lock

    _lock.prepare()
    _progress.attach_terminal()
    for meta in SERVICES.values():
        config.addinivalue_line("markers", f"{meta.name}: {meta.marker_help}")
    from pytest_commons.plugin import markers as requires

    config.addinivalue_line("markers", f"{requires.MARKER}: {requires.MARKER_HELP}")
    # validate every option now, so a bad value is a usage error before any test runs
    _options.validate(config)
    _options.backend_order(config)  # a usage error for a backend it does not know
    config.stash[MISSING_KEY] = _options.services_missing(config)
    if _is_worker(config):
        winput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
        if "commons_run_dir" not in winput:
            raise pytest.UsageError(
                "pytest-commons: this xdist worker got no run directory from the controller "
                "(the controller did not load pytest-commons, or loaded it without xdist's "
                "hooks); load both in the controller: `-p xdist.plugin -p commons`"
            )
        ctx = RunContext(
            Path(winput["commons_run_dir"]),
            int(winput["commons_owner_pid"]),
            str(winput["workerid"]),
            int(winput.get("workercount", 1)),
        )
        config.stash[OWNER_KEY] = False
    else:
        for stale in stale_runs():
            from pytest_commons.core.reaper import reap

            reap(stale)
        ctx = RunContext.create()
        config.stash[OWNER_KEY] = True
        if hasattr(config.hook, "pytest_configure_node"):
            # xdist's hooks, whatever name it was loaded under ("xdist" as an entry point,
            # "xdist.plugin" with `-p xdist.plugin` when autoload is off)
            config.pluginmanager.register(_XdistHooks(ctx), "commons-xdist")
    # the run config, resolved once, is what the registry, backends and specs read (with
    # reuse: --reuse-services, or --keep-failed: a kept database needs its server afterwards)
    config.stash[REGISTRY_KEY] = Registry(ctx, run_config(config))


class _XdistHooks:
    """Hands the run directory to every xdist worker."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["commons_run_dir"] = str(self.ctx.run_dir)
        node.workerinput["commons_owner_pid"] = self.ctx.owner_pid


#: (service, the fixture that starts it): a test uses a service when its closure has the fixture
_SERVICE_FIXTURES = tuple((svc, f"{svc}_service") for svc in SERVICES)
#: whether an item carries ``@pytest.mark.requires`` (looked up once, at collection)
_REQUIRES = pytest.StashKey[bool]()


def services_of(item: pytest.Item) -> list[str]:
    names = getattr(item, "fixturenames", ())
    return [svc for svc, fixture in _SERVICE_FIXTURES if fixture in names]


def gone_sections(item: pytest.Item) -> list[tuple[str, str]]:
    """Report sections for the services ``item`` used whose server is no longer running."""
    registry = item.config.stash.get(REGISTRY_KEY, None)
    if registry is None:
        return []
    sections = []
    for name in services_of(item):
        handle = registry.started(name)
        gone = handle.gone() if handle is not None else None
        if handle is None or gone is None:
            continue
        lines = handle.logs().rstrip().splitlines()[-20:]
        log = "\n".join(f"  {line}" for line in lines) or "  (the server logged nothing)"
        where = f" ({handle.instance.log_path})" if handle.instance.log_path else ""
        sections.append(
            (
                f"commons: {name} is gone",
                f"{name} ({handle.backend}, {handle.info.describe()}) {gone} during the run: "
                f"every later test that uses {name} fails the same way.\n"
                f"last lines of its log{where}:\n{log}\n"
                "remedy: the log says why it stopped (out of memory, a crash, killed from "
                "outside the run); the next run starts a fresh server",
            )
        )
    return sections


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test that used a service whose server died says so, with the server's log."""
    report = yield
    if report.failed:
        report.sections.extend(gone_sections(item))
    return report


@pytest.hookimpl(trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.requires``: after the fixtures, skip (or fail under
    ``--services-missing=fail``) when the serving engine lacks a required feature."""
    marked = item.stash.get(_REQUIRES, None)
    if marked is None:  # an item collection did not see (added by another plugin later)
        marked = item.get_closest_marker("requires") is not None
    if not marked:
        return
    from pytest_commons.plugin import markers as requires

    request: pytest.FixtureRequest = item._request  # type: ignore[attr-defined]
    reason = requires.missing(item, lambda svc: request.getfixturevalue(f"{svc}_service"))
    if reason is None:
        return
    if item.config.stash[MISSING_KEY] == "fail":
        pytest.fail(
            f"{reason}\n  (failing because --services-missing=fail, the default when $CI is set)",
            pytrace=False,
        )
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marked = item.stash[_REQUIRES] = item.get_closest_marker("requires") is not None
        if marked:
            from pytest_commons.plugin import markers as requires

            requires.validate(item)
        for svc in services_of(item):
            item.add_marker(svc)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if _lists_only(config) or REGISTRY_KEY not in config.stash:
        return
    needed = sorted({svc for item in session.items for svc in services_of(item)})
    _remember_services(config, needed)
    if not needed:
        return
    registry = config.stash[REGISTRY_KEY]
    registry.prestart(needed)
    states = ", ".join(f"{svc} ({registry.status(svc)})" for svc in needed)
    if _is_worker(config):
        # under xdist the controller collects nothing: the first worker says it, on the
        # terminal (its stderr is the controller's), outside any captured output
        if config.workerinput.get("workerid") == "gw0":  # type: ignore[attr-defined]
            _progress.notice(f"commons: {states}")
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"commons: {states}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    order = " → ".join(_options.backend_order(config))
    forced = [
        f"{svc}={_options.get(config, f'{svc}_backend')}"
        for svc in SERVICES
        if _options.get(config, f"{svc}_backend") != "auto"
    ]
    line = f"commons: backends auto = {order}; missing services → {config.stash[MISSING_KEY]}"
    if forced:
        line += f"; forced {', '.join(forced)}"
    from pytest_commons.core.run import RUNTIME_NOTES
    from pytest_commons.plugin.settings import NOTES

    _settings(config).cache_dir()  # checked now, so that a fallback is in the header
    return [line, *(f"commons: {note}" for note in (*RUNTIME_NOTES, *NOTES))]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if REGISTRY_KEY not in config.stash or _is_worker(config):
        return
    ctx = config.stash[REGISTRY_KEY].ctx
    rows: list[tuple[str, str, str, str, str]] = []
    for inst in ctx.instances():
        info = inst.info
        where = f"{info.get('host')}:{info.get('port')}" if "port" in info else ""
        state = (
            "reused (kept running)"
            if inst.reused and inst.startup_seconds == 0
            else f"ready in {inst.startup_seconds:.2f}s"
            if inst.ready
            else "starting"
        )
        rows.append((inst.label, inst.backend, inst.version, state, where))
    # versions vary in length ("7.0.15", "10.11.19-MariaDB-0+deb12u1"): size that column
    width = max([14, *(len(row[2]) for row in rows)])
    import json

    failures = list(dict.fromkeys(json.loads(m)["message"] for m in ctx.failures()))
    if not rows and not failures:
        return
    terminalreporter.section("commons services", sep="-")
    for service, backend, version, state, where in rows:
        terminalreporter.write_line(
            f"{service:<11} {backend:<9} {version:<{width}} {state:<18} {where}".rstrip()
        )
    for message in failures:
        terminalreporter.write_line(message)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # anything else (failures too: an xdist worker may have crashed mid-start) sweeps at the end
    ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    session.config.stash[COMPLETE_KEY] = exitstatus in ok


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    try:
        _stop_services(config)
    finally:
        _progress.detach_terminal()


def _stop_services(config: pytest.Config) -> None:
    registry = config.stash.get(REGISTRY_KEY, None)
    if registry is None:
        return
    owner = config.stash.get(OWNER_KEY, False)
    if owner:
        registry.ctx.mark_closing()  # a start still under way (Ctrl-C) spawns nothing more
    registry.shutdown()
    if not owner:
        return
    from pytest_commons.core.cleanup import stop_all, sweep_run_containers, sweep_run_processes

    stop_all(registry.ctx.instances())
    if not config.stash.get(COMPLETE_KEY, False):
        # interrupted or failed: a server may have been spawned but never recorded (a /proc scan)
        sweep_run_processes(str(registry.ctx.run_dir))
    if (registry.ctx.run_dir / "docker-used").exists():
        sweep_run_containers(registry.ctx.run_id)
    registry.ctx.destroy()
    del config.stash[REGISTRY_KEY]


def _hint_path(config: pytest.Config) -> Path:
    import hashlib

    key = repr((str(config.rootpath), config.invocation_params.args, os.getcwd()))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _settings(config).cache_dir() / "hints" / f"{digest}.services"


def _remember_services(config: pytest.Config, needed: list[str]) -> None:
    """Remember what this invocation needed, so the next identical one starts it at once."""
    if _is_worker(config) and config.workerinput.get("workerid") != "gw0":  # type: ignore[attr-defined]
        return
    path = _hint_path(config)
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _prune_hints(path.parent)
        if not path.exists() or path.read_text().split() != needed:
            path.write_text(" ".join(needed))
    except OSError:
        pass


#: hint files kept: one per command (rootdir, arguments, working directory), and tools that run
#: pytest in a fresh temporary directory each time (pytester) make a new command every run
HINTS_KEPT = 256


def _prune_hints(directory: Path) -> None:
    """Keep the :data:`HINTS_KEPT` most recently used hint files (a use touches its file), with
    room for the one about to be written; only once the directory has reached the bound."""
    if sum(1 for _ in os.scandir(directory)) >= HINTS_KEPT:
        from pytest_commons.core.host import keep_newest

        keep_newest(directory, HINTS_KEPT - 1)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start what the same command needed last time while pytest collects (a warm start);
    collection then asks for exactly what the tests use."""
    config = session.config
    if _lists_only(config) or REGISTRY_KEY not in config.stash:
        return
    path = _hint_path(config)
    try:
        hinted = [s for s in path.read_text().split() if s in SERVICES]
        os.utime(path)  # recently used: kept by _prune_hints
    except OSError:
        return
    if getattr(config.option, "dist", "no") != "no" and not _is_worker(config):
        # xdist: the workers run the tests; a server per worker is theirs to start
        run = run_config(config)
        hinted = [s for s in hinted if not run.service(s).per_worker]
    if hinted:
        config.stash[REGISTRY_KEY].prestart(hinted)
