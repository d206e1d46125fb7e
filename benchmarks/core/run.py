"""PostgreSQL and Redis: pytest-commons side by side with pytest-postgresql and pytest-redis.

Each suite is 100 tests doing one INSERT+SELECT (SET+GET for Redis); the whole ``pytest``
process is timed, every suite in the same run, alternating, median of ``--repeat`` runs. The CPU
seconds of each run are printed too (``RUSAGE_CHILDREN``: pytest and every process it started
and reaped — our servers; not pytest-postgresql's, which ``pg_ctl`` detaches, nor the floor's
redis-server, started before the suites): on 2 cores, CPU / 2 bounds the wall time from below.

The peers refuse to run as root, so when started as root this script creates an unprivileged
user and a virtualenv it can read (``/opt/pytest-commons-bench``) and runs *every* suite, ours
included, as that user. Usage::

    python benchmarks/core/run.py --repeat 3            # prints a table and ratios
    python benchmarks/core/run.py --repeat 3 --markdown # the table for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("PC_BENCH_VENV", "/opt/pytest-commons-bench"))
USER = "pcbench"
N = 100
#: CPU seconds of every timed run, by suite (see the module docstring)
CPU: dict[str, list[float]] = {}

PG_BIN = (
    sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    if glob.glob("/usr/lib/postgresql/*/bin")
    else ""
)

# every suite loads only its own plugin (autoload is off), so no suite pays for another's imports
OURS = ["-p", "pytest_commons.plugin.hooks"]
SUITES: dict[str, tuple[str, list[str]]] = {
    "commons postgres (fresh db)": (
        """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_insert(postgres, i):
    with postgres.connect() as conn:
        conn.execute("create table t (x int)")
        conn.execute("insert into t values (%s)", (i,))
        assert conn.execute("select x from t").fetchone() == (i,)
""",
        OURS,
    ),
    "commons postgres_tx (rollback)": (
        """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_insert(postgres_tx, i):
    postgres_tx.execute("create table t (x int)")
    postgres_tx.execute("insert into t values (%s)", (i,))
    assert postgres_tx.execute("select x from t").fetchone() == (i,)
""",
        OURS,
    ),
    "pytest-postgresql (fresh db)": (
        """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_insert(postgresql, i):
    cur = postgresql.cursor()
    cur.execute("create table t (x int)")
    cur.execute("insert into t values (%s)", (i,))
    cur.execute("select x from t")
    assert cur.fetchone() == (i,)
""",
        ["-p", "pytest_postgresql.plugin", f"--postgresql-exec={PG_BIN}/pg_ctl"],
    ),
    "pytest-postgresql on tmpfs": (
        """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_insert(postgresql, i):
    cur = postgresql.cursor()
    cur.execute("create table t (x int)")
    cur.execute("insert into t values (%s)", (i,))
    cur.execute("select x from t")
    assert cur.fetchone() == (i,)
""",
        ["-p", "pytest_postgresql.plugin", f"--postgresql-exec={PG_BIN}/pg_ctl", "TMPFS"],
    ),
    "commons redis": (
        """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_set_get(redis, i):
    redis.set("k", i)
    assert redis.get("k") == str(i).encode()
""",
        OURS,
    ),
    "pytest-redis": (
        """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_set_get(redisdb, i):
    redisdb.set("k", i)
    assert redisdb.get("k") == str(i).encode()
""",
        ["-p", "pytest_redis.plugin", f"--redis-exec={shutil.which('redis-server') or ''}"],
    ),
    # no plugin at all: a conftest-style client on a server started before pytest, flushed per
    # test as pytest-commons and pytest-redis do: what pytest + redis-py cost by themselves
    "redis-py alone (server already up)": (
        """
import os, pytest, redis as redis_py
@pytest.fixture(scope="session")
def _client():
    client = redis_py.Redis(port=int(os.environ["BENCH_REDIS_PORT"]))
    yield client
    client.close()
@pytest.fixture
def r(_client):
    _client.flushdb()
    return _client
@pytest.mark.parametrize("i", range({n}))
def test_set_get(r, i):
    r.set("k", i)
    assert r.get("k") == str(i).encode()
""",
        [],
    ),
    "plain pytest (floor)": (
        """
import pytest
@pytest.mark.parametrize("i", range({n}))
def test_nothing(i):
    assert i >= 0
""",
        [],
    ),
}
FIRST_TEST = """
import os, time
def test_first(postgres):
    with open(os.environ["FIRST_OUT"], "w") as fh:
        fh.write(repr(time.time()))
"""


def _run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def prepare() -> tuple[list[str], str]:
    """Returns the command prefix that runs Python as the bench user, and that Python."""
    if os.geteuid() != 0:
        return [], sys.executable
    try:
        pwd.getpwnam(USER)
    except KeyError:
        _run(["useradd", "--system", "--create-home", "--shell", "/bin/sh", USER])
    python = str(VENV / "bin" / "python")
    if not Path(python).exists():
        _run([sys.executable, "-m", "virtualenv", "-q", "-p", "/usr/bin/python3", str(VENV)])
    _run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            f"{ROOT}[postgres,redis]",
            "pytest-postgresql",
            "pytest-redis",
        ]
    )
    return ["runuser", "-u", USER, "--"], python


def start_floor_redis(prefix: list[str], workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server for the no-plugin floor suite, started before any suite runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)]
    server = subprocess.Popen(
        [*prefix, shutil.which("redis-server") or "redis-server", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return server, port
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("redis-server for the floor suite did not start")
            time.sleep(0.01)


def run_suite(
    prefix: list[str], python: str, workdir: Path, name: str, extra: list[str], env: dict[str, str]
) -> float:
    args = [a for a in extra if a != "TMPFS"]
    shm = None
    if "TMPFS" in extra:
        shm = Path(tempfile.mkdtemp(prefix="peer-", dir="/dev/shm"))
        if prefix:
            shutil.chown(shm, USER)
        args.append(f"--basetemp={shm}/bt")
    test_file = workdir / f"test_{abs(hash(name))}.py"
    cmd = [*prefix, python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(test_file)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(name, []).append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    )
    if shm is not None:
        shutil.rmtree(shm, ignore_errors=True)
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only the suites whose name contains this text (repeatable; the ratios "
        "printed are those whose both suites ran)",
    )
    opts = parser.parse_args()
    if opts.only:
        for name in list(SUITES):
            if not any(part in name for part in opts.only):
                del SUITES[name]
    prefix, python = prepare()
    workdir = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    os.chmod(workdir, 0o777)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_COMMONS_", "PYTEST_ADDOPTS")) and k != "CI"
    }
    env["HOME"] = pwd.getpwnam(USER).pw_dir if prefix else env.get("HOME", "/tmp")
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # bytecode caching on, as in a user's own venv: without it (this machine's shell sets
    # PYTHONDONTWRITEBYTECODE=1) every run recompiles whatever pip did not precompile (an
    # editable checkout) and re-rewrites every plugin module. One cache for all suites, owned
    # by the user that runs them, filled by the warm-up run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    pycache = workdir / "pycache"
    pycache.mkdir()
    if prefix:
        shutil.chown(pycache, USER)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    for name, (body, _) in SUITES.items():
        (workdir / f"test_{abs(hash(name))}.py").write_text(body.format(n=N))
    redis_server = start_floor_redis(prefix, workdir)
    env["BENCH_REDIS_PORT"] = str(redis_server[1])
    (workdir / "first.py").write_text(FIRST_TEST)
    times: dict[str, list[float]] = {name: [] for name in SUITES}
    # warm-up: fills pytest-commons' initdb cache and the OS page cache for every suite
    for name, (_, extra) in SUITES.items():
        run_suite(prefix, python, workdir, name, extra, env)
    CPU.clear()  # the warm-up's are not reported
    for _ in range(opts.repeat):
        for name, (_, extra) in SUITES.items():
            times[name].append(run_suite(prefix, python, workdir, name, extra, env))
    first: list[float] = []
    for _ in range(opts.repeat if "commons postgres (fresh db)" in SUITES else 0):
        out = workdir / "first.out"
        started = time.time()
        subprocess.run(
            [
                *prefix,
                python,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                *OURS,
                str(workdir / "first.py"),
            ],
            cwd=workdir,
            env={**env, "FIRST_OUT": str(out)},
            capture_output=True,
            check=True,
        )
        first.append(float(out.read_text()) - started)
    redis_server[0].terminate()
    redis_server[0].wait()
    shutil.rmtree(workdir, ignore_errors=True)
    med = {name: statistics.median(v) for name, v in times.items()}
    ratios = [
        ("commons postgres (fresh db)", "pytest-postgresql (fresh db)", 1 / 5),
        ("commons postgres (fresh db)", "pytest-postgresql on tmpfs", None),
        ("commons postgres_tx (rollback)", "pytest-postgresql (fresh db)", 1 / 20),
        ("commons postgres_tx (rollback)", "pytest-postgresql on tmpfs", None),
        ("commons redis", "pytest-redis", 1 / 2),
        ("redis-py alone (server already up)", "pytest-redis", None),
    ]
    ratios = [r for r in ratios if r[0] in med and r[1] in med]
    if opts.markdown:
        print(f"| suite ({N} tests, whole pytest process) | median s | runs | CPU s (median) |")
        print("|---|---:|---|---:|")
        for name, value in med.items():
            runs = ", ".join(f"{t:.2f}" for t in times[name])
            print(f"| {name} | {value:.2f} | {runs} | {statistics.median(CPU[name]):.2f} |")
        print()
        print("| ours / peer | ratio | target |")
        print("|---|---:|---:|")
        for ours, peer, target in ratios:
            tgt = f"≤ {target:.3f}" if target else "—"
            print(f"| {ours} / {peer} | {med[ours] / med[peer]:.3f} | {tgt} |")
        if first:
            print()
            print(
                f"pytest start → first postgres test running (warm cache): median "
                f"{statistics.median(first):.3f} s "
                f"(runs: {', '.join(f'{t:.3f}' for t in first)})"
            )
    else:
        for name, value in med.items():
            runs = ", ".join(f"{t:.2f}" for t in times[name])
            cpu = statistics.median(CPU[name])
            print(f"{name:<34} {value:7.2f} s   CPU {cpu:5.2f} s   runs: {runs}")
        for ours, peer, target in ratios:
            print(
                f"{ours} / {peer}: {med[ours] / med[peer]:.3f}"
                + (f" (target ≤ {target:.3f})" if target else "")
            )
        if first:
            print(f"start → first postgres test: {statistics.median(first):.3f} s {first}")


if __name__ == "__main__":
    main()
