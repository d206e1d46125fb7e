"""Kafka benchmark: Tansu ready time, and 50 tests that each produce 10 messages to their own
topic and consume them through a consumer group, with where the time goes.

    python benchmarks/kafka/run.py [--engine tansu|apache] [--via subscribe|consume]
                                   [--tests 50] [--starts 5]

``--engine`` picks the local engine (``PYTEST_COMMONS_KAFKA_ENGINE``); the ready-time part
spawns a bare Tansu and is skipped for ``apache`` (its start is in the pytest summary).
``--via subscribe`` (the default) consumes the way application code does (``kafka.consumer()``,
``subscribe``, ``poll``, ``close``); ``--via consume`` through the fixture's ``kafka.consume``
helper (its whole call is the ``join_first`` row).

Phases are timed inside the inner pytest run (topic create, produce, group join → first
message, rest of consume, delete at teardown) and written to a JSON file that this script sums.
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
import json, os, time, pytest
from confluent_kafka import KafkaError

OUT = os.environ["KAFKA_BENCH_OUT"]

@pytest.fixture
def timed_kafka(kafka):
    phases = {}
    yield kafka, phases
    t = time.perf_counter()
    kafka.cleanup()  # closes clients, deletes the topic and the group
    phases["delete"] = time.perf_counter() - t
    with open(OUT, "a") as fh:
        fh.write(json.dumps(phases) + "\\n")

@pytest.mark.parametrize("n", range(int(os.environ["KAFKA_BENCH_TESTS"])))
def test_produce_consume(timed_kafka, n):
    kafka, phases = timed_kafka
    t = time.perf_counter()
    topic = kafka.topic("bench")
    phases["create"] = time.perf_counter() - t
    t = time.perf_counter()
    kafka.produce(topic, [f"m{i}" for i in range(10)])
    phases["produce"] = time.perf_counter() - t
    if os.environ["KAFKA_BENCH_VIA"] == "consume":  # the helper: subscribe, poll, close
        t = time.perf_counter()
        assert len(kafka.consume(topic, 10)) == 10
        phases["join_first"] = time.perf_counter() - t
        return
    consumer = kafka.consumer()
    t = time.perf_counter()
    consumer.subscribe([topic])
    got = []
    while len(got) < 10 and time.perf_counter() - t < 20:
        msg = consumer.poll(0.05)
        if msg is None or msg.error():
            continue
        if not got:
            phases["join_first"] = time.perf_counter() - t
            t2 = time.perf_counter()
        got.append(msg)
    phases["consume_rest"] = time.perf_counter() - t2
    t = time.perf_counter()
    consumer.close()
    phases["close"] = time.perf_counter() - t
    assert len(got) == 10
"""

# per-test wall time as pytest sees it: setup (the kafka fixture's topic snapshot) + call +
# teardown (clean-up); the first test's setup also waits for the broker, so it is left out
CONFTEST = """
import json, os

TOTALS = {}

def pytest_runtest_logreport(report):
    TOTALS[report.nodeid] = TOTALS.get(report.nodeid, 0.0) + report.duration
    if report.when == "teardown":
        with open(os.environ["KAFKA_BENCH_OUT"] + ".tests", "a") as fh:
            fh.write(json.dumps(TOTALS.pop(report.nodeid)) + "\\n")
"""


def ready_times(starts: int) -> list[float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from pytest_commons.core.host import free_port
    from pytest_commons.services.kafka.spec import KafkaSpec, kafka_metadata

    path, why = KafkaSpec().tansu_binary()
    if path is None:
        raise SystemExit(why)
    out = []
    for _ in range(starts):
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        t = time.perf_counter()
        proc = subprocess.Popen(
            [
                path,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while True:
            try:
                kafka_metadata("127.0.0.1", port, timeout=1)
                break
            except OSError:
                time.sleep(0.002)
        out.append(time.perf_counter() - t)
        proc.terminate()
        proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--engine", choices=("tansu", "apache"), default="tansu")
    parser.add_argument("--via", choices=("subscribe", "consume"), default="subscribe")
    args = parser.parse_args()

    if args.engine == "tansu" and args.starts:
        ready = ready_times(args.starts)
        print(
            f"tansu start -> metadata answer: median {statistics.median(ready) * 1000:.1f} ms "
            f"(min {min(ready) * 1000:.1f}, max {max(ready) * 1000:.1f}, n={len(ready)})"
        )

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_bench.py").write_text(INNER)
        Path(tmp, "conftest.py").write_text(CONFTEST)
        out = Path(tmp, "phases.jsonl")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(
            KAFKA_BENCH_OUT=str(out),
            KAFKA_BENCH_TESTS=str(args.tests),
            PYTEST_COMMONS_KAFKA_BACKEND="local",
            PYTEST_COMMONS_KAFKA_ENGINE=args.engine,
            KAFKA_BENCH_VIA=args.via,
        )
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bench.py"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t
        print(proc.stdout.strip().splitlines()[-1])
        for line in proc.stdout.splitlines():  # the summary's "kafka  local  … ready in …"
            if line.startswith("kafka ") and "ready in" in line:
                print("broker:", " ".join(line.split()))
        if proc.returncode:
            print(proc.stdout[-3000:], proc.stderr[-2000:])
            raise SystemExit(1)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        per_test = [json.loads(line) for line in Path(f"{out}.tests").read_text().splitlines()]
    print(
        f"{args.tests} tests, whole pytest process: {wall:.2f} s "
        f"({wall / args.tests:.3f} s per test)"
    )
    later = per_test[1:] or per_test
    print(
        f"per test (setup+call+teardown, first test left out), {args.engine} via {args.via}: "
        f"median {statistics.median(later) * 1000:.1f} ms (min {min(later) * 1000:.1f}, "
        f"max {max(later) * 1000:.1f}, n={len(later)}); first test {per_test[0]:.2f} s"
    )
    total = 0.0
    for phase in ("create", "produce", "join_first", "consume_rest", "close", "delete"):
        values = [r.get(phase, 0.0) for r in rows]
        total += statistics.mean(values)
        print(
            f"  {phase:13s} mean {statistics.mean(values) * 1000:8.1f} ms   "
            f"median {statistics.median(values) * 1000:8.1f} ms   "
            f"max {max(values) * 1000:8.1f} ms"
        )
    print(f"  {'sum of means':13s}      {total * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
