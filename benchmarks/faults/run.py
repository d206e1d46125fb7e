"""Fault proxy cost: what a proxy with no fault set adds to one round trip.

    python benchmarks/faults/run.py [--round-trips 2000] [--rounds 7]

A redis-server on 127.0.0.1 (started here, stopped at the end) answers PING on a plain socket;
each round times ``--round-trips`` PING/PONG round trips directly, then through a built-in
proxy and (when toxiproxy-server is found) through a Toxiproxy proxy, in the same round so that
the machine's noise hits all of them. Printed: per engine, the added time per round trip over
the rounds (min / median / max of the per-round means) and the direct round trip itself.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_commons.backends.local import free_port
from pytest_commons.faults.builtin import BuiltinEngine
from pytest_commons.faults.toxiproxy import ToxiproxyEngine, find_server


def _round_trips(address: tuple[str, int], n: int) -> float:
    """Mean seconds per PING round trip on one connection (after a warm-up)."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(50):
            sock.sendall(b"PING\r\n")
            sock.recv(64)
        start = time.perf_counter()
        for _ in range(n):
            sock.sendall(b"PING\r\n")
            if sock.recv(64) != b"+PONG\r\n":
                raise RuntimeError("unexpected reply")
        return (time.perf_counter() - start) / n


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        print("redis-server is not installed (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    procs: list[subprocess.Popen[bytes]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-faults-", dir="/dev/shm"))
    try:
        port = free_port()
        procs.append(
            subprocess.Popen(
                [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                cwd=work,
                stdout=subprocess.DEVNULL,
            )
        )
        _wait_port(port)
        upstream = ("127.0.0.1", port)
        engines: dict[str, Callable[[], tuple[str, int]]] = {}
        builtin = BuiltinEngine()
        engines["builtin"] = lambda: builtin.create("bench", upstream)
        binary = find_server(None, Path.home() / ".cache" / "pytest-commons")
        toxiproxy = None
        if binary:
            api_port = free_port()
            procs.append(
                subprocess.Popen(
                    [binary, "-host", "127.0.0.1", "-port", str(api_port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            _wait_port(api_port)
            toxiproxy = ToxiproxyEngine("127.0.0.1", api_port)
            tp = toxiproxy
            engines["toxiproxy"] = lambda: tp.create("bench", upstream)
        else:
            print("toxiproxy-server not found: measuring the built-in engine only")
        addresses = {name: make() for name, make in engines.items()}
        direct: list[float] = []
        added: dict[str, list[float]] = {name: [] for name in addresses}
        for _ in range(args.rounds):
            base = _round_trips(upstream, args.round_trips)
            direct.append(base)
            for name, address in addresses.items():
                added[name].append(_round_trips(address, args.round_trips) - base)
        ms = 1000.0
        print(
            f"{args.rounds} rounds of {args.round_trips} PING round trips, one connection each"
            f" (python {sys.version.split()[0]})"
        )
        print(
            f"{'direct round trip':<28} min {min(direct) * ms:.3f}  median "
            f"{statistics.median(direct) * ms:.3f}  max {max(direct) * ms:.3f} ms"
        )
        for name, values in added.items():
            print(
                f"{'added by ' + name + ' proxy':<28} min {min(values) * ms:.3f}  median "
                f"{statistics.median(values) * ms:.3f}  max {max(values) * ms:.3f} ms"
            )
        builtin.close()
        if toxiproxy is not None:
            toxiproxy.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
