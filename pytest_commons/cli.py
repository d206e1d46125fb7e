"""``pytest-commons``: look at and clean up what the plugin runs.

pytest-commons doctor [--json] [--require SERVICE]
        what each service can run on here, and why not; exits 1 when a service the settings
        ask for (a forced --<service>-backend, a configured URL, or --require) cannot be served
pytest-commons list   [--json] [--show-passwords]
        services kept by --reuse-services (or --keep-failed), as URLs to paste (passwords
        masked unless asked for: the kept servers' records are readable by their user only)
pytest-commons down              stop every kept service (and its containers)
pytest-commons fetch NAME [--https]   put a pinned engine (e.g. the MockServer jar) in the cache
pytest-commons --version
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import pytest

from pytest_commons.core.config import RunConfig
from pytest_commons.core.run import REUSE_DIR, Instance, RunContext, runtime_root, stale_runs
from pytest_commons.plugin.settings import Settings, as_run_config
from pytest_commons.services import SERVICES

#: ``pytest-commons fetch NAME``: "module:function(run_config, use_mvn)" that puts a pinned
#: artifact in the cache and returns its path (imported only when asked for)
FETCHABLE: dict[str, str] = {
    "kafka": "pytest_commons.services.kafka.dist:fetch_for_cli",
    "mockserver": "pytest_commons.services.mockserver.spec:fetch_jar",
}


def resolved_settings() -> Settings:
    """The settings a ``pytest`` run started here would use: environment, then the ini file
    pytest finds from this directory (pytest.ini, pyproject.toml, tox.ini, setup.cfg), then
    the defaults — resolved by pytest itself, with the plugin's own code."""
    from _pytest.config import Config

    from pytest_commons.plugin.hooks import _settings

    try:
        # --assert=plain: no import hook (this process has imported pytest_commons already)
        config = Config.fromdictargs({}, ["-p", "no:cacheprovider", "--assert=plain"])
        try:
            return _settings(config)
        finally:
            config._ensure_unconfigure()
    except pytest.UsageError:
        raise  # a bad value: the same usage error a test run would stop with
    except Exception as exc:  # an ini file pytest cannot read must not hide the report
        print(
            f"pytest-commons: could not read the pytest configuration here ({exc}); "
            "using the environment and the defaults only",
            file=sys.stderr,
        )
        return Settings.from_env()


def doctor_report(
    settings: RunConfig | Settings | None = None, require: list[str] | None = None
) -> dict[str, Any]:
    """Per service and backend: available, or the reason and the remedy; ``asked``: the
    services the settings ask for and whether each can be served here."""
    from pytest_commons.backends.base import get_backend
    from pytest_commons.core.registry import load_spec
    from pytest_commons.errors import BackendUnavailable

    # the same resolution as a test run's (command line, environment, ini, defaults)
    settings = as_run_config(settings or resolved_settings())
    require = list(require or ())
    unknown = [name for name in require if name not in SERVICES]
    if unknown:
        raise ValueError(f"unknown service {', '.join(unknown)}: use {', '.join(SERVICES)}")
    report: dict[str, Any] = {
        "services": {},
        "cache_dir": str(settings.cache_dir()),
        "runtime_dir": str(runtime_root()),
    }
    for name, meta in SERVICES.items():
        entry: dict[str, Any] = {"backends": {}}
        try:
            spec = load_spec(name, settings)
        except ImportError as exc:
            entry["driver"] = f"service module not importable: {exc}"
            report["services"][name] = entry
            continue
        entry["driver"] = spec.check_driver() or "ok"
        engine_of = getattr(spec, "engine", None)  # services with several local engines
        if callable(engine_of):
            try:
                engine, why = engine_of()
                entry["local_engine"] = f"{engine} ({why})"
            except ValueError as exc:
                entry["local_engine"] = f"invalid: {exc}"
        for backend_name in meta.backends:
            try:
                backend = get_backend(backend_name, settings)
                if hasattr(backend, "allow_pull"):
                    backend.allow_pull = False
                why = backend.unavailable(spec)
            except BackendUnavailable as exc:
                why = exc
            except Exception as exc:  # a broken environment is a finding, not a crash
                why = BackendUnavailable(f"check failed: {type(exc).__name__}: {exc}")
            entry["backends"][backend_name] = (
                {"available": True}
                if why is None
                else {"available": False, "reason": why.reason, "remedy": why.remedy}
            )
        report["services"][name] = entry
    cache = settings.cache_dir()
    report["cache"] = (
        sorted(str(p.relative_to(cache)) for p in cache.glob("*/*") if p.is_dir())
        if cache.exists()
        else []
    )
    report["kept"] = [_describe(i) for k in RunContext.kept_contexts() for i in k.instances()]
    report["asked"] = _asked(report, settings, require)
    return report


def _asked(
    report: dict[str, Any], settings: RunConfig, require: list[str]
) -> dict[str, dict[str, Any]]:
    """The services the settings ask for, and whether a backend here can serve each.

    Asked for: ``--<service>-backend`` other than auto, a configured URL (external backend),
    or named in ``require`` (``pytest-commons doctor --require redis``).
    """
    order = settings.backend_order
    asked: dict[str, dict[str, Any]] = {}
    for name, meta in SERVICES.items():
        service = settings.service(name)
        forced = service.backend
        url_set = "external" in meta.backends and service.url
        why = ([f"{name}_backend={forced}"] if forced != "auto" else []) + (
            [f"{service.url_key} is set"] if url_set else []
        )
        if name in require:
            why.append("--require")
        if not why:
            continue
        entry = report["services"][name]
        candidates = [forced] if forced != "auto" else [b for b in order if b in meta.backends]
        usable = [
            b for b in candidates if entry.get("backends", {}).get(b, {}).get("available", False)
        ]
        driver_ok = entry.get("driver") == "ok"
        asked[name] = {
            "because": why,
            "backend": usable[0] if usable and driver_ok else None,
            "servable": bool(usable) and driver_ok,
        }
    return asked


def _describe(inst: Instance, show_passwords: bool = False) -> dict[str, Any]:
    secret = ("password", "secret_access_key")
    info = {k: v for k, v in inst.info.items() if show_passwords or k not in secret}
    return {
        "service": inst.label,
        "backend": inst.backend,
        "version": inst.version,
        "url": paste_url(inst, masked=not show_passwords),
        "pid": inst.pid,
        "container": inst.container_id[:12],
        "info": info,
    }


def paste_url(inst: Instance, masked: bool = True) -> str:
    """The instance's URL as a client takes it, with the password masked (``:***@``) unless
    ``masked`` is false."""
    from pytest_commons.core.registry import load_spec
    from pytest_commons.services.base import mask_url

    try:
        info = load_spec(inst.service, Settings.from_env()).info_from_dict(inst.info)
    except Exception:  # a record from another version of the plugin: show what it has
        return f"{inst.info.get('host', '?')}:{inst.info.get('port', '?')}"
    url = getattr(info, "url", None) or getattr(info, "endpoint_url", None)
    if not url:
        return f"{info.host}:{info.port}"
    return mask_url(str(url)) if masked else str(url)


def _print_doctor(report: dict[str, Any]) -> None:
    for name, entry in report["services"].items():
        print(f"{name}: driver {entry['driver']}")
        if "local_engine" in entry:
            print(f"  local engine: {entry['local_engine']}")
        for backend, state in entry["backends"].items():
            if state["available"]:
                print(f"  {backend:<9} available")
            else:
                remedy = f" — {state['remedy']}" if state.get("remedy") else ""
                print(f"  {backend:<9} no: {state['reason']}{remedy}")
    print(f"cache: {report['cache_dir']} ({len(report['cache'])} entries)")
    print(f"kept services (--reuse-services): {len(report['kept'])}")
    for kept in report["kept"]:
        print(f"  {kept['service']} {kept['backend']} {kept['version']} {kept['url']}")
    for name, state in report.get("asked", {}).items():
        because = ", ".join(state["because"])
        if state["servable"]:
            print(f"asked for ({because}): {name} → {state['backend']}")
        else:
            print(f"asked for ({because}): {name} CANNOT be served here (see above)")


def doctor_exit_code(report: dict[str, Any]) -> int:
    """1 when a service the settings ask for cannot be served here, else 0."""
    return 1 if any(not s["servable"] for s in report.get("asked", {}).values()) else 0


def _fetch(names: list[str], use_mvn: bool | None) -> int:
    import importlib

    from pytest_commons.core.java import FetchError

    settings = resolved_settings().run_config()
    for name in names:
        module, _, func = FETCHABLE[name].partition(":")
        try:
            path = getattr(importlib.import_module(module), func)(settings, use_mvn)
        except (FetchError, OSError) as exc:
            print(f"pytest-commons fetch {name}: failed: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # the reader left (`pytest-commons list --json | head`): stop quietly, and keep the
        # interpreter's final flush from failing again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return _EXIT.get("code", 0)


_EXIT: dict[str, int] = {}


def _main(argv: list[str] | None) -> int:
    from pytest_commons import __version__

    parser = argparse.ArgumentParser(
        prog="pytest-commons",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("doctor", "list"):
        p = sub.add_parser(name)
        p.add_argument("--json", action="store_true")
    sub.choices["list"].add_argument(
        "--show-passwords",
        action="store_true",
        help="print the URLs with their passwords (to connect to a database --keep-failed kept)",
    )
    sub.choices["doctor"].add_argument(
        "--require",
        action="append",
        default=[],
        metavar="SERVICE",
        help="a service CI needs (repeatable, or comma separated): exit 1 if none of its "
        f"backends can serve it here ({', '.join(SERVICES)})",
    )
    sub.add_parser("down")
    fetch = sub.add_parser("fetch", help="put a pinned engine in the cache")
    fetch.add_argument("what", choices=sorted(FETCHABLE), nargs="+")
    fetch.add_argument(
        "--https", action="store_true", help="download from Maven Central even if mvn is here"
    )
    from pytest_commons import coverage_gate

    coverage_gate.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return _command(parser, args)
    except pytest.UsageError as exc:
        print(f"pytest-commons {args.command}: {exc}", file=sys.stderr)
        return 2


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "coverage-gate":
        from pytest_commons import coverage_gate

        return coverage_gate.run_cli(args)
    if args.command == "fetch":
        return _fetch(args.what, use_mvn=False if args.https else None)
    if args.command == "doctor":
        require = [n.strip() for item in args.require for n in item.split(",") if n.strip()]
        try:
            report = doctor_report(require=require)
        except ValueError as exc:
            parser.error(str(exc))
        _EXIT["code"] = doctor_exit_code(report)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            _print_doctor(report)
        return _EXIT["code"]
    kept_contexts = RunContext.kept_contexts()
    if args.command == "list":
        data: dict[str, list[Any]] = {
            "kept": [
                _describe(i, args.show_passwords)
                for keep in kept_contexts
                for i in keep.instances()
            ],
            "stale_runs": [str(p) for p in stale_runs()],
        }
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            for kept in data["kept"]:
                name, backend, version = kept["service"], kept["backend"], kept["version"]
                print(f"{name:<11} {backend:<8} {version:<14} {kept['url']}")
            if not data["kept"]:
                print("no kept services")
        return 0
    from pytest_commons.core.cleanup import stop_instance, sweep_run_containers, sweep_run_processes
    from pytest_commons.core.reaper import reap

    for keep in kept_contexts:
        for inst in keep.instances():
            inst.reused = False
            stop_instance(inst)
            (keep.per_worker_of(inst.slot) if inst.slot else keep).remove(inst.service)
            print(f"stopped {inst.label} ({inst.backend})")
        sweep_run_containers(keep.run_id)
        if keep.run_dir.parent.name == REUSE_DIR:
            keep.mark_closing()
            sweep_run_processes(str(keep.run_dir))
            keep.destroy()
    for stale in stale_runs():
        reap(stale)
        print(f"reaped {stale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
