"""All six services at once on the local backend: pytest start → the test body, and the memory
of the servers, over several rounds.

    python benchmarks/services/run.py [--rounds 5] [--java]

Each round is a fresh pytest process with one test that asks for ``postgres``, ``mysql``,
``redis``, ``kafka`` (Tansu), ``aws`` (moto) and ``mockserver`` (the built-in engine), every
service on the local backend. Timed: from just before the process is spawned to the first line
of the test body (so interpreter start, plugin load, collection, every server's start and each
fixture's per-test set-up), and to the process's exit (stopping the servers included). In the
test body each server's process tree (the pid the plugin recorded, and its children: Postgres'
backends, the engine hub's engines) is measured with psutil: summed RSS, and summed PSS (which
shares pages such as Postgres' shared memory between the processes that map them).

Only pytest-commons is loaded (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p pytest_commons.plugin.hooks``,
as in the other benchmarks): with every plugin installed on this machine (schemathesis, pact,
hypothesis, …) pytest alone takes seconds to start. ``--all-plugins`` measures that too.

``--java`` adds rounds of the engines kept out of the targets, reported apart: Apache Kafka
(``kafka_engine=apache``), MockServer's Java engine and RabbitMQ (Erlang).

The cache (``~/.cache/pytest-commons``: Postgres' and MariaDB's initialised data dirs, the
hint file that starts last run's services before collection) is the user's: warm after the
first round. The first round's figures are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INNER = """
import json, os, time

import psutil

OUT = os.environ["SERVICES_BENCH_OUT"]


def measure(handles, start_key):
    body = time.time()
    out = {"body": body, "services": {}}
    for handle in handles:
        proc = psutil.Process(handle.instance.pid)
        procs = [proc, *proc.children(recursive=True)]
        rss = pss = cpu = 0
        for p in procs:
            try:
                full = p.memory_full_info()
                times = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            rss += full.rss
            pss += full.pss
            cpu += times.user + times.system
        out["services"][handle.service] = {
            "rss": rss,
            "pss": pss,
            "processes": len(procs),
            "cpu": cpu,
            "version": handle.version,
            "backend": handle.backend,
            "startup": handle.instance.startup_seconds,
        }
    me = psutil.Process()
    out["pytest_rss"] = me.memory_info().rss
    out["pytest_cpu"] = me.cpu_times().user + me.cpu_times().system
    with open(OUT, "w") as fh:
        json.dump(out, fh)


def test_six(postgres, mysql, redis, kafka, aws, mockserver, postgres_service, mysql_service,
             redis_service, kafka_service, aws_service, mockserver_service):
    measure([postgres_service, mysql_service, redis_service, kafka_service, aws_service,
             mockserver_service], "six")


def test_java(kafka, mockserver, rabbitmq, kafka_service, mockserver_service,
              rabbitmq_service):
    measure([kafka_service, mockserver_service, rabbitmq_service], "java")
"""

ALL_PLUGINS = False
SIX = ("postgres", "mysql", "redis", "kafka", "aws", "mockserver")
MIB = 1024 * 1024


def one_round(tmp: Path, test: str, engines: dict[str, str], services: tuple[str, ...]) -> dict:
    out = tmp / "out.json"
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["SERVICES_BENCH_OUT"] = str(out)
    for name in services:
        env[f"PYTEST_COMMONS_{name.upper()}_BACKEND"] = "local"
    env.update(engines)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"test_six.py::{test}"]
    if not ALL_PLUGINS:  # only pytest-commons, as the other benchmarks load only their plugin
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        argv[3:3] = ["-p", "pytest_commons.plugin.hooks"]
    t0 = time.time()
    proc = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True)
    end = time.time()
    if proc.returncode or not out.is_file():
        print(proc.stdout[-3000:], proc.stderr[-2000:])
        raise SystemExit(f"{test}: the inner pytest run failed")
    data = json.loads(out.read_text())
    data["to_body"] = data["body"] - t0
    data["to_exit"] = end - t0
    return data


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return (
        f"median {fmt.format(statistics.median(values))} "
        f"(min {fmt.format(min(values))}, max {fmt.format(max(values))}, n={len(values)})"
    )


def report(rounds: list[dict], services: tuple[str, ...]) -> None:
    print(f"  pytest start -> test body: {spread([r['to_body'] for r in rounds])} s")
    print(f"  pytest start -> exit:      {spread([r['to_exit'] for r in rounds])} s")
    total_rss = [sum(s["rss"] for s in r["services"].values()) / MIB for r in rounds]
    total_pss = [sum(s["pss"] for s in r["services"].values()) / MIB for r in rounds]
    print(f"  servers' RSS summed: {spread(total_rss, '{:.0f}')} MiB")
    print(f"  servers' PSS summed: {spread(total_pss, '{:.0f}')} MiB")
    print(f"  pytest's own RSS:    {spread([r['pytest_rss'] / MIB for r in rounds], '{:.0f}')} MiB")
    print(f"  pytest's own CPU s to the body: {spread([r['pytest_cpu'] for r in rounds])}")
    print(
        "  per server (median over rounds): RSS MiB / PSS MiB / processes / ready s / "
        "CPU s to the body / version"
    )
    for name in services:
        rows = [r["services"][name] for r in rounds]
        print(
            f"    {name:10s} {statistics.median(x['rss'] for x in rows) / MIB:6.1f} "
            f"{statistics.median(x['pss'] for x in rows) / MIB:6.1f} "
            f"{statistics.median(x['processes'] for x in rows):3.0f} "
            f"{statistics.median(x['startup'] for x in rows):6.2f} "
            f"{statistics.median(x['cpu'] for x in rows):6.2f}  "
            f"{rows[0]['version']} ({rows[0]['backend']})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--java", action="store_true", help="also the Java/Erlang engines")
    parser.add_argument(
        "--all-plugins",
        action="store_true",
        help="let pytest load every installed plugin (default: pytest-commons only)",
    )
    args = parser.parse_args()
    global ALL_PLUGINS
    ALL_PLUGINS = args.all_plugins

    with tempfile.TemporaryDirectory(prefix="pc-bench-services-") as name:
        tmp = Path(name)
        (tmp / "test_six.py").write_text(INNER)
        engines = {
            "PYTEST_COMMONS_KAFKA_ENGINE": "tansu",
            "PYTEST_COMMONS_MOCKSERVER_ENGINE": "commons",
        }
        rounds = [one_round(tmp, "test_six", engines, SIX) for _ in range(args.rounds)]
        print(f"six services, local backend, {args.rounds} rounds (`uptime`: {_load()})")
        report(rounds, SIX)
        first = rounds[0]
        print(
            f"  first round: test body at {first['to_body']:.2f} s, servers' RSS "
            f"{sum(s['rss'] for s in first['services'].values()) / MIB:.0f} MiB"
        )
        if args.java:
            engines = {
                "PYTEST_COMMONS_KAFKA_ENGINE": "apache",
                "PYTEST_COMMONS_MOCKSERVER_ENGINE": "java",
            }
            java = ("kafka", "mockserver", "rabbitmq")
            rounds = [one_round(tmp, "test_java", engines, java) for _ in range(args.rounds)]
            print(f"Java/Erlang engines, local backend, {args.rounds} rounds ({_load()})")
            report(rounds, java)


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" load")[0].strip()


if __name__ == "__main__":
    main()
