"""Fault proxy cost: what a proxy with no fault set adds to one round trip.

    python benchmarks/faults/run.py [--round-trips 200] [--blocks 40]

A redis-server on 127.0.0.1 (started here, stopped at the end) answers PING on plain sockets
held open for the whole run: one direct, one through a built-in proxy and (when
toxiproxy-server is found) one through a Toxiproxy proxy. Blocks of ``--round-trips`` PING/PONG
round trips are timed in turn on each socket (direct, builtin, toxiproxy, direct, ...), so the
machine's noise hits all of them alike; a block's added cost is its mean round trip minus the
mean of the direct block just before it. Printed per engine: min / median / max of the added
cost over the blocks, and the floor (best proxied block minus best direct block).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_commons.core.host import free_port
from pytest_commons.faults.builtin import BuiltinEngine
from pytest_commons.faults.toxiproxy import ToxiproxyEngine, find_server


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _block(sock, 200)  # warm-up
    return sock


def _block(sock: socket.socket, n: int) -> float:
    """Mean seconds per PING round trip over ``n`` round trips."""
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
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=40)
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
        socks = {"direct": _connect(upstream)}
        socks.update({name: _connect(address) for name, address in addresses.items()})
        times: dict[str, list[float]] = {name: [] for name in socks}
        added: dict[str, list[float]] = {name: [] for name in addresses}
        for _ in range(args.blocks):
            for name, sock in socks.items():
                times[name].append(_block(sock, args.round_trips))
                if name != "direct":
                    added[name].append(times[name][-1] - times["direct"][-1])
        for sock in socks.values():
            sock.close()
        ms = 1000.0
        direct = times["direct"]
        print(
            f"{args.blocks} blocks of {args.round_trips} PING round trips per socket, in turn"
            f" (python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f})"
        )
        print(
            f"{'direct round trip':<28} min {min(direct) * ms:.3f}  median "
            f"{statistics.median(direct) * ms:.3f}  max {max(direct) * ms:.3f} ms"
        )
        for name, values in added.items():
            floor = min(times[name]) - min(direct)
            print(
                f"{'added by ' + name + ' proxy':<28} min {min(values) * ms:.3f}  median "
                f"{statistics.median(values) * ms:.3f}  max {max(values) * ms:.3f} ms"
                f"  (floor {floor * ms:.3f} ms)"
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
