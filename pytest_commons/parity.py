"""The parity table (docs/parity.md), generated from test runs.

    python -m pytest_commons.parity run mockserver   # run its feature suites on every engine
    python -m pytest_commons.parity write            # docs/parity.md from docs/parity/*.json
    python -m pytest_commons.parity write --check    # fail when docs/parity.md is stale

``run`` runs a service's feature suites once per engine with this module loaded as a pytest
plugin, which records every test's outcome; the outcomes go to ``docs/parity/<service>.json``
(``{"service", "engines": {engine: {nodeid: [outcome, reason]}}}``). Any service can provide
such a file (the Kafka suites write ``docs/parity/kafka.json`` the same way); ``write`` renders
one table per file: per feature (a test function), what each engine did. Sections with no
reference system to run (moto) are kept as text in ``docs/parity/<name>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "docs" / "parity"
TABLE = ROOT / "docs" / "parity.md"
OUT_ENV = "PYTEST_COMMONS_PARITY_OUT"

#: service → (engine option env, {engine: title}, suites)
SUITES: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "mockserver": (
        "PYTEST_COMMONS_MOCKSERVER_ENGINE",
        {"commons": "pytest-commons engine", "java": "MockServer 5.15.0 (real)"},
        ["tests/engines/test_mockserver_protocol.py", "tests/integration/test_mockserver.py"],
    ),
}


# the recording plugin -----------------------------------------------------------------------
class Recorder:
    """Records each test's outcome (passed, failed, skipped, xfailed) and its reason."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.outcomes: dict[str, list[str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            reason = ""
            if hasattr(report, "wasxfail"):
                outcome, reason = "xfailed" if report.skipped else "xpassed", report.wasxfail
            elif report.skipped:
                outcome = "skipped"
                longrepr = report.longrepr
                reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
            else:
                outcome = report.outcome
            self.outcomes[report.nodeid] = [outcome, reason.removeprefix("Skipped: ")]

    def pytest_sessionfinish(self) -> None:
        Path(self.path).write_text(json.dumps(self.outcomes, indent=1, sort_keys=True))


def pytest_configure(config: pytest.Config) -> None:
    """Loaded with ``-p pytest_commons.parity``: record when ``$PYTEST_COMMONS_PARITY_OUT``
    names a file."""
    out = os.environ.get(OUT_ENV)
    if out and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Recorder(out), "commons-parity-recorder")


# running and rendering ----------------------------------------------------------------------
def run(service: str, data: Path = DATA, cwd: Path = ROOT) -> Path:
    """Run ``service``'s suites on each of its engines; write ``<data>/<service>.json``."""
    env_name, engines, suites = SUITES[service]
    result: dict[str, Any] = {"service": service, "titles": engines, "engines": {}}
    data.mkdir(parents=True, exist_ok=True)
    for engine in engines:
        out = data / f".{service}-{engine}.tmp.json"
        env = {**os.environ, env_name: engine, OUT_ENV: str(out)}
        env[f"PYTEST_COMMONS_{service.upper()}_BACKEND"] = "local"  # the engines are local
        subprocess.run(
            [sys.executable, "-m", "pytest", *suites, "-p", "no:cacheprovider", "-p",
             "pytest_commons.parity", "-q", "--coverage-gate=off"],
            cwd=cwd, env=env, check=False,
        )  # fmt: skip
        result["engines"][engine] = json.loads(out.read_text())
        out.unlink()
    path = data / f"{service}.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return path


def _feature(nodeid: str) -> str:
    name = nodeid.split("::")[-1].split("[")[0].removeprefix("test_")
    return name.replace("_", " ")


_MARK = {"passed": "yes", "failed": "**fails**", "xpassed": "**fails** (xpass)"}


def _cell(results: list[list[str]]) -> str:
    kinds = {r[0] for r in results}
    if kinds == {"passed"}:
        return "yes"
    for kind in ("failed", "xpassed"):
        if kind in kinds:
            return _MARK[kind]
    reasons = sorted(
        {
            r[1].removeprefix("differs on MockServer 5.15.0: ")
            for r in results
            if r[0] in ("xfailed", "skipped") and r[1]
        }
    )
    word = "differs" if "xfailed" in kinds else "not honoured"
    part = " (some cases)" if "passed" in kinds else ""
    text = "; ".join(reasons)[:200].replace("|", "\\|").replace("\n", " ")
    return f"{word}{part}: {text}" if text else word


def render_service(data: dict[str, Any]) -> str:
    engines: dict[str, dict[str, list[str]]] = data["engines"]
    titles: dict[str, str] = data.get("titles") or {e: e for e in engines}
    features: dict[str, dict[str, list[list[str]]]] = {}
    for engine, outcomes in engines.items():
        for nodeid, result in outcomes.items():
            features.setdefault(_feature(nodeid), {}).setdefault(engine, []).append(result)
    lines = [
        f"## {data['service']}",
        "",
        "| feature (test) | " + " | ".join(titles[e] for e in engines) + " |",
        "|---|" + "---|" * len(engines),
    ]
    for feature in sorted(features):
        cells = [_cell(features[feature].get(e, [])) if e in features[feature] else "not run"
                 for e in engines]  # fmt: skip
        lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    counts = []
    for engine in engines:
        passed = sum(1 for r in engines[engine].values() if r[0] == "passed")
        counts.append(f"{titles[engine]}: {passed}/{len(engines[engine])} tests pass")
    lines += ["", "; ".join(counts) + ".", ""]
    return "\n".join(lines)


_FEATURE_WORDS = {"supported": "yes", "missing": "**no**", "unknown": "not established"}


def render_features(data: dict[str, Any]) -> str:
    """A per-feature results file (``"format": 1``, as scripts/kafka-parity.py writes it):
    ``engines: {engine: {software, suite: {passed, skipped, failed}}}`` and
    ``features: {feature: {results: {engine: supported|missing|unknown}, <note>}}``."""
    engines: dict[str, dict[str, Any]] = data["engines"]
    titles = [str(info.get("software") or name) for name, info in engines.items()]
    lines = [
        f"## {data['service']}",
        "",
        "| feature | " + " | ".join(titles) + " | note |",
        "|---|" + "---|" * (len(engines) + 1),
    ]
    for feature, entry in sorted(data.get("features", {}).items()):
        results = entry.get("results", {})
        cells = [_FEATURE_WORDS.get(results.get(e, ""), "not run") for e in engines]
        notes = [str(v) for k, v in entry.items() if k != "results" and isinstance(v, str)]
        note = "; ".join(notes).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {feature} | " + " | ".join(cells) + f" | {note} |")
    counts = []
    for title, info in zip(titles, engines.values(), strict=True):
        suite = info.get("suite") or {}
        if suite:
            total = sum(int(v) for v in suite.values())
            counts.append(f"{title}: {suite.get('passed', 0)}/{total} tests pass")
    generated = f" Generated by `{data['generated_by']}`." if data.get("generated_by") else ""
    lines += ["", ("; ".join(counts) + "." if counts else "") + generated, ""]
    return "\n".join(lines)


def render() -> str:
    parts = [
        "# Parity: the stand-in engines beside the systems they imitate",
        "",
        "Generated by `python -m pytest_commons.parity write` from the outcomes in",
        "`docs/parity/*.json` (written by `python -m pytest_commons.parity run <service>`, which",
        "runs the service's feature suites on every engine) and the notes in `docs/parity/*.md`.",
        "Do not edit by hand; CI fails when this file is stale. `yes`: the tests of the feature",
        "pass; `differs`: a test pins a known divergence (strict xfail, reason given); `not",
        "honoured`: skipped by `@pytest.mark.requires` on that engine.",
        "",
    ]
    for path in sorted(DATA.glob("*.json")):
        data = json.loads(path.read_text())
        parts.append(render_features(data) if "features" in data else render_service(data))
    for path in sorted(DATA.glob("*.md")):
        parts.append(path.read_text().rstrip() + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_commons.parity", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("service", choices=sorted(SUITES))
    write = sub.add_parser("write")
    write.add_argument("--check", action="store_true", help="fail when docs/parity.md is stale")
    args = parser.parse_args(argv)
    if args.command == "run":
        print(run(args.service))
        return 0
    text = render()
    if args.check:
        current = TABLE.read_text() if TABLE.exists() else ""
        if current != text:
            print(
                "docs/parity.md is stale: run `python -m pytest_commons.parity write`",
                file=sys.stderr,
            )
            return 1
        return 0
    TABLE.write_text(text)
    print(TABLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
