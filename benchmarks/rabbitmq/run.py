"""pytest-commons' rabbitmq fixture against pytest-rabbitmq: the same publish+consume tests
(100 by default), whole pytest processes timed, the two suites alternating; then the two
isolation strategies of the plugin measured on one server.

    python benchmarks/rabbitmq/run.py [--rounds 3] [--tests 100] [--isolation-only]

Each plugin is installed as a user would, in a virtualenv of its own with only that plugin
(and pika): ``/tmp/pc-bench-rmq-peer`` (``pip install pytest-rabbitmq pika``) and
``/tmp/pc-bench-rmq-ours`` (``pip install -e <repo>[rabbitmq]``), made if missing. Both run
Debian's rabbitmq-server from /usr/lib/rabbitmq/bin, with their test files on the same disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PEER = Path("/tmp/pc-bench-rmq-peer")
OURS = Path("/tmp/pc-bench-rmq-ours")

BODY = """
    channel = connection.channel()
    channel.queue_declare("q")
    channel.basic_publish("", "q", b"m%d" % n)
    method, _props, body = next(channel.consume("q", inactivity_timeout=10))
    channel.basic_ack(method.delivery_tag)
    channel.cancel()
    assert body == b"m%d" % n
"""
SUITES = {
    # the same test body; only how the connection is obtained differs
    "pytest-rabbitmq": (
        "import pytest\n\n@pytest.mark.parametrize('n', range({tests}))\n"
        "def test_publish_consume(rabbitmq, n):\n    connection = rabbitmq\n" + BODY
    ),
    "pytest-commons": (
        "import pytest\n\n@pytest.mark.parametrize('n', range({tests}))\n"
        "def test_publish_consume(rabbitmq, n):\n    connection = rabbitmq.connection()\n" + BODY
    ),
}
ISOLATION = """
import statistics, time
from pytest_commons.services.rabbitmq.client import RabbitmqWorker

def test_isolation_costs(rabbitmq_service):
    worker = RabbitmqWorker(rabbitmq_service, "pc_bench_iso")
    worker.create("pc_bench_iso")
    empty, per_test, one_queue = [], [], []
    for _ in range(50):
        t0 = time.perf_counter(); worker.empty(); empty.append(time.perf_counter() - t0)
    conn = worker.spec.connect(worker.info)
    for _ in range(50):
        conn.channel().queue_declare("q")
        t0 = time.perf_counter(); worker.empty(); one_queue.append(time.perf_counter() - t0)
    conn.close()
    for _ in range(20):
        t0 = time.perf_counter(); worker.recreate(); per_test.append(time.perf_counter() - t0)
    worker.delete()
    def ms(xs):
        low, mid, high = min(xs) * 1000, statistics.median(xs) * 1000, max(xs) * 1000
        return f"{mid:.1f} ms (min {low:.1f}, max {high:.1f})"

    print(f"\\nISOLATION empty-untouched={ms(empty)} empty-one-queue={ms(one_queue)} "
          f"vhost-per-test={ms(per_test)}")
"""


def _venv(path: Path, *packages: str) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def _run(python: Path, test_file: Path, *args: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file), *args],
        cwd=test_file.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{test_file.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--isolation-only", action="store_true")
    args = parser.parse_args()
    ours = _venv(OURS, "-e", f"{REPO}[rabbitmq]")
    with tempfile.TemporaryDirectory(prefix="pc-bench-rmq-") as tmp:
        iso = Path(tmp) / "iso" / "test_isolation.py"
        iso.parent.mkdir()
        iso.write_text(ISOLATION)
        _, out = _run(ours, iso, "-s", "--rabbitmq-backend=local")
        print(next(line for line in out.splitlines() if line.startswith("ISOLATION")))
        if args.isolation_only:
            return 0
        peer = _venv(PEER, "pytest-rabbitmq", "pika")
        pythons = {"pytest-rabbitmq": peer, "pytest-commons": ours}
        files = {}
        for name, text in SUITES.items():
            folder = Path(tmp) / name
            folder.mkdir()
            files[name] = folder / "test_bench.py"
            files[name].write_text(text.format(tests=args.tests))
        times: dict[str, list[float]] = {name: [] for name in SUITES}
        extra = {"pytest-commons": ("--rabbitmq-backend=local",), "pytest-rabbitmq": ()}
        for round_ in range(args.rounds):
            order = list(SUITES) if round_ % 2 == 0 else list(reversed(SUITES))
            for name in order:
                elapsed, _ = _run(pythons[name], files[name], *extra[name])
                times[name].append(elapsed)
                print(f"round {round_ + 1} {name}: {elapsed:.1f} s", flush=True)
    print(f"\n{args.tests} publish+consume tests, whole pytest process, {args.rounds} rounds:")
    for name, values in times.items():
        print(
            f"  {name:<16} median {statistics.median(values):7.1f} s "
            f"(min {min(values):.1f}, max {max(values):.1f})"
        )
    ratio = statistics.median(times["pytest-commons"]) / statistics.median(times["pytest-rabbitmq"])
    print(f"  pytest-commons / pytest-rabbitmq = {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
