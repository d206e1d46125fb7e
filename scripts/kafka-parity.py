#!/usr/bin/env python
"""Runs the Kafka feature suite (tests/integration/test_kafka.py) on every local Kafka engine
available here and writes what each engine does as JSON (docs/parity/kafka.json by default).

    python scripts/kafka-parity.py                 # run, write docs/parity/kafka.json
    python scripts/kafka-parity.py --check         # run, fail when the file differs (CI)
    python scripts/kafka-parity.py --engines tansu # only these engines

Exit status: 1 when a test of the suite failed on an engine, or (--check) when the file is
stale; 2 when an engine cannot run here. The format is described in docs/kafka.md
("Parity data"); the parity-doc generator reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = "tests/integration/test_kafka.py"
DEFAULT_OUT = ROOT / "docs" / "parity" / "kafka.json"
ENGINES = ("tansu", "apache")
# tests that are not about one feature but about the fixture/plugin: all must pass everywhere
ASYNC_FEATURE_TESTS = {
    "aiokafka_idempotence": "test_aiokafka_idempotent_producer",
    "aiokafka_transactions": "test_aiokafka_transactions",
}


def run_engine(engine: str, workdir: Path) -> dict[str, str]:
    """Run the suite on ``engine``; return {test name: passed|skipped|failed}."""
    report = workdir / f"{engine}.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_COMMONS_KAFKA")}
    env.update(PYTEST_COMMONS_KAFKA_ENGINE=engine, PYTEST_COMMONS_KAFKA_BACKEND="local")
    argv = [
        sys.executable,
        "-m",
        "pytest",
        SUITE,
        "-p",
        "no:cacheprovider",
        "-q",
        "-rs",
        "--services-missing=skip",
        f"--junitxml={report}",
    ]
    print(f"kafka-parity: {engine}: {' '.join(argv[3:])}", flush=True)
    subprocess.run(argv, cwd=ROOT, env=env, check=False)
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


def feature_result(feature: str, outcomes: dict[str, str]) -> str:
    """supported (the check passed) | missing (skipped, and the pin shows the wrong answer) |
    unknown (anything else: the suite failed or did not run it)."""
    if feature in ASYNC_FEATURE_TESTS:
        check = outcomes.get(ASYNC_FEATURE_TESTS[feature])
        pin = outcomes.get("test_tansu_still_fails_aiokafka_init_producer_id")
    else:
        check = outcomes.get(f"test_feature[{feature}]")
        pin = outcomes.get(f"test_tansu_still_lacks[{feature}]")
    if check == "passed":
        return "supported"
    if check == "skipped" and pin == "passed":
        return "missing"
    return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail when --out is stale")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from pytest_commons.plugin.settings import Settings
    from pytest_commons.services.kafka.client import FEATURES
    from pytest_commons.services.kafka.spec import APACHE_SOFTWARE, KafkaSpec

    spec = KafkaSpec(Settings.from_env())
    missing = spec.apache_unavailable() if "apache" in args.engines else None
    if missing:
        print(f"kafka-parity: Apache Kafka cannot run here: {missing}", file=sys.stderr)
        return 2
    software = {"tansu": "tansu 0.6.0", "apache": APACHE_SOFTWARE}
    data: dict[str, object] = {
        "format": 1,
        "service": "kafka",
        "suite": SUITE,
        "generated_by": "python scripts/kafka-parity.py",
        "engines": {e: {"software": software[e]} for e in args.engines},
        "features": {},
    }
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kafka-parity-") as tmp:
        for engine in args.engines:
            outcomes = run_engine(engine, Path(tmp))
            failed += [f"{engine}: {name}" for name, what in outcomes.items() if what == "failed"]
            passed = sum(1 for what in outcomes.values() if what == "passed")
            data["engines"][engine]["suite"] = {  # type: ignore[index]
                "passed": passed,
                "skipped": sum(1 for what in outcomes.values() if what == "skipped"),
                "failed": sum(1 for what in outcomes.values() if what == "failed"),
            }
            for feature, tansu_answer in FEATURES.items():
                entry = data["features"].setdefault(  # type: ignore[attr-defined]
                    feature, {"tansu_deviation": tansu_answer, "results": {}}
                )
                entry["results"][engine] = feature_result(feature, outcomes)
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    if failed:
        print("kafka-parity: failed tests:\n  " + "\n  ".join(failed), file=sys.stderr)
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(
                f"kafka-parity: {args.out} is stale: run python scripts/kafka-parity.py",
                file=sys.stderr,
            )
            return 1
        print(f"kafka-parity: {args.out} is up to date")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"kafka-parity: wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
