"""``pytest-commons``: look at and clean up what the plugin runs.

pytest-commons doctor [--json]   what each service can run on here, and why not
pytest-commons list   [--json]   services kept by --reuse-services and runs in progress
pytest-commons down              stop every kept service (and its containers)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pytest_commons._run import REUSE_DIR, Instance, RunContext, runtime_root, stale_runs
from pytest_commons._settings import Settings
from pytest_commons.services import SERVICES


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
    from pytest_commons import coverage_gate

    coverage_gate.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "coverage-gate":
        return coverage_gate.run_cli(args)
    if args.command == "doctor":
        report = doctor_report()
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            _print_doctor(report)
        return 0
    kept_contexts = RunContext.kept_contexts()
    if args.command == "list":
        data: dict[str, list[Any]] = {
            "kept": [_describe(i) for keep in kept_contexts for i in keep.instances()],
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
    from pytest_commons._cleanup import stop_instance, sweep_run_containers, sweep_run_processes
    from pytest_commons._reaper import reap

    for keep in kept_contexts:
        for inst in keep.instances():
            inst.reused = False
            stop_instance(inst)
            keep.remove(inst.service)
            print(f"stopped {inst.service} ({inst.backend})")
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
