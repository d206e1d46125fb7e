"""``pytest-commons``: look at and clean up what the plugin runs.

pytest-commons doctor [--json]   what each service can run on here, and why not
pytest-commons list   [--json]   services kept by --reuse-services and runs in progress
pytest-commons down              stop every kept service (and its containers)
pytest-commons fetch NAME [--https]   put a pinned engine (e.g. the MockServer jar) in the cache
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pytest_commons._run import Instance, RunContext, runtime_root, stale_runs
from pytest_commons._settings import Settings
from pytest_commons.services import SERVICES

#: ``pytest-commons fetch NAME``: "module:function(settings, use_mvn)" that puts a pinned
#: artifact in the cache and returns its path (imported only when asked for)
FETCHABLE: dict[str, str] = {
    "kafka": "pytest_commons.services.kafka_dist:fetch_for_cli",
    "mockserver": "pytest_commons.services.mockserver:fetch_jar",
}


def doctor_report(settings: Settings | None = None) -> dict[str, Any]:
    """Per service and backend: available, or the reason and the remedy."""
    from pytest_commons.backends.base import get_backend
    from pytest_commons.errors import BackendUnavailable
    from pytest_commons.registry import load_spec

    settings = settings or Settings.from_env()
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
    report["kept"] = [_describe(i) for i in RunContext.reuse().instances()]
    return report


def _describe(inst: Instance) -> dict[str, Any]:
    info = {k: v for k, v in inst.info.items() if k not in ("password", "secret_access_key")}
    return {
        "service": inst.service,
        "backend": inst.backend,
        "version": inst.version,
        "pid": inst.pid,
        "container": inst.container_id[:12],
        "info": info,
    }


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
        print(f"  {kept['service']} {kept['backend']} {kept['version']} {kept['info']}")


def _fetch(names: list[str], use_mvn: bool | None) -> int:
    import importlib

    from pytest_commons._java import FetchError

    settings = Settings.from_env()
    for name in names:
        module, _, func = FETCHABLE[name].partition(":")
        try:
            path = getattr(importlib.import_module(module), func)(settings, use_mvn)
        except (FetchError, OSError) as exc:
            print(f"pytest-commons fetch {name}: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pytest-commons",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("doctor", "list"):
        p = sub.add_parser(name)
        p.add_argument("--json", action="store_true")
    sub.add_parser("down")
    fetch = sub.add_parser("fetch", help="put a pinned engine in the cache")
    fetch.add_argument("what", choices=sorted(FETCHABLE), nargs="+")
    fetch.add_argument(
        "--https", action="store_true", help="download from Maven Central even if mvn is here"
    )
    from pytest_commons import coverage_gate

    coverage_gate.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "coverage-gate":
        return coverage_gate.run_cli(args)
    if args.command == "fetch":
        return _fetch(args.what, use_mvn=False if args.https else None)
    if args.command == "doctor":
        report = doctor_report()
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            _print_doctor(report)
        return 0
    keep = RunContext.reuse()
    if args.command == "list":
        data: dict[str, list[Any]] = {
            "kept": [_describe(i) for i in keep.instances()],
            "stale_runs": [str(p) for p in stale_runs()],
        }
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            for kept in data["kept"]:
                print(
                    f"{kept['service']:<11} {kept['backend']:<8} {kept['version']:<14} "
                    f"{kept['info']}"
                )
            if not data["kept"]:
                print("no kept services")
        return 0
    from pytest_commons._cleanup import stop_instance, sweep_run_containers
    from pytest_commons._reaper import reap

    for inst in keep.instances():
        inst.reused = False
        stop_instance(inst)
        keep.remove(inst.service)
        print(f"stopped {inst.service} ({inst.backend})")
    sweep_run_containers(keep.run_id)
    for stale in stale_runs():
        reap(stale)
        print(f"reaped {stale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
