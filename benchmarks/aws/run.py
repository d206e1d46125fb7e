"""AWS: service ready time, per-test isolation cost, and 100-test suites side by side.

1. ready: spawn → first successful S3 ListBuckets, for the plugin's moto launcher
   (``python -m pytest_commons.services.aws.moto``) and moto's stock ``python -m moto.server``.
2. isolation: per-test cost over 100 tests, each creating a bucket with an object, a queue and
   a table, then cleaning up by (a) per-account reset (what the local backend does),
   (b) tracked deletion (external endpoints), (c) moto's global ``/moto-api/reset`` (for
   reference: not xdist-safe, never used by the plugin).
3. suites: the whole ``pytest`` process for 100 tests (bucket + put + get) with the ``aws``
   fixture, and with moto's in-process ``mock_aws`` as a per-test fixture (the usual peer).

Usage::

    python benchmarks/aws/run.py --repeat 5
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
N = 100

COMMONS_SUITE = """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_s3(aws, i):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="bench-bucket")
    s3.put_object(Bucket="bench-bucket", Key="k", Body=str(i).encode())
    assert s3.get_object(Bucket="bench-bucket", Key="k")["Body"].read() == str(i).encode()
"""
MOTO_SUITE = """
import boto3, pytest
from moto import mock_aws

@pytest.fixture
def s3():
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1", aws_access_key_id="test",
                           aws_secret_access_key="test")

@pytest.mark.parametrize("i", range({n}))
def test_s3(s3, i):
    s3.create_bucket(Bucket="bench-bucket")
    s3.put_object(Bucket="bench-bucket", Key="k", Body=str(i).encode())
    assert s3.get_object(Bucket="bench-bucket", Key="k")["Body"].read() == str(i).encode()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(argv: list[str], port: int) -> tuple[subprocess.Popen[bytes], float]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_PORT": str(port)},
    )
    deadline = started + 30
    while True:
        try:
            client.list_buckets()
            return proc, time.perf_counter() - started
        except Exception:
            if time.perf_counter() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"{argv} did not become ready") from None
            time.sleep(0.005)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_ready(repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"commons launcher": [], "stock moto.server": []}
    for _ in range(repeat):
        for label, module in (
            ("commons launcher", "pytest_commons.services.aws.moto"),
            ("stock moto.server", "moto.server"),
        ):
            port = free_port()
            proc, seconds = start(
                [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port)], port
            )
            results[label].append(seconds)
            stop(proc)
    return results


def bench_isolation() -> dict[str, list[float]]:
    from pytest_commons.plugin.settings import Settings
    from pytest_commons.services.aws.client import Aws, AwsWorker, worker_account
    from pytest_commons.services.aws.spec import AwsInfo, AwsSpec

    port = free_port()
    argv = [sys.executable, "-m", "pytest_commons.services.aws.moto", "-p", str(port)]
    proc, _ = start(argv, port)
    spec = AwsSpec(Settings.from_env())
    results: dict[str, list[float]] = {}
    try:
        for label, reset in (
            ("account reset (local)", True),
            ("tracked deletion (external)", False),
            ("global /moto-api/reset (reference)", None),
        ):
            account = worker_account(label, "gw0")
            info = AwsInfo(host="127.0.0.1", port=port).with_credentials(account, "test")
            worker = AwsWorker(
                spec=spec,
                info=info,
                account_id=account,
                namespace="pcbench",
                reset_accounts=bool(reset),
            )
            view = Aws(worker)
            times = []
            for i in range(N):
                s3 = view.client("s3")
                bucket = view.bucket()
                s3.put_object(Bucket=bucket, Key="k", Body=str(i).encode())
                view.queue()
                view.table()
                started = time.perf_counter()
                if reset is None:
                    urllib.request.urlopen(
                        urllib.request.Request(
                            f"http://127.0.0.1:{port}/moto-api/reset", data=b"", method="POST"
                        )
                    )
                else:
                    view.cleanup()
                times.append(time.perf_counter() - started)
            results[label] = times
    finally:
        stop(proc)
    return results


def bench_suites(repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        "commons aws fixture (local moto)": [],
        "moto mock_aws fixture (in-process)": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(len(results)):
            Path(tmp, f"suite{index}").mkdir()
        for _ in range(repeat):
            pairs = zip(results, (COMMONS_SUITE, MOTO_SUITE), strict=True)
            for index, (label, source) in enumerate(pairs):
                folder = Path(tmp, f"suite{index}")
                (folder / "test_bench.py").write_text(source.format(n=N))
                args = (
                    ["-p", "pytest_commons.plugin.hooks", "--aws-backend=local"]
                    if "commons" in label
                    else []
                )
                env = {
                    k: v
                    for k, v in os.environ.items()
                    if not k.startswith(("PYTEST_COMMONS_", "PYTEST_ADDOPTS"))
                }
                env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
                started = time.perf_counter()
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pytest",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                        *args,
                        "test_bench.py",
                    ],
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                results[label].append(time.perf_counter() - started)
                if done.returncode != 0:
                    raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ms = 1000.0
    print(f"## ready (spawn → S3 ListBuckets answered), median of {args.repeat}")
    for label, values in bench_ready(args.repeat).items():
        print(
            f"  {label:38} {statistics.median(values) * ms:7.0f} ms "
            f"(min {min(values) * ms:.0f}, max {max(values) * ms:.0f})"
        )
    print(f"## per-test isolation over {N} tests (bucket+object, queue, table each)")
    for label, values in bench_isolation().items():
        print(
            f"  {label:38} median {statistics.median(values) * ms:6.2f} ms, "
            f"p95 {sorted(values)[int(len(values) * 0.95)] * ms:6.2f} ms, "
            f"total {sum(values):.3f} s"
        )
    print(f"## whole pytest process, {N} tests (create bucket, put, get), median of {args.repeat}")
    for label, values in bench_suites(args.repeat).items():
        print(
            f"  {label:38} {statistics.median(values):6.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f})"
        )


if __name__ == "__main__":
    main()
