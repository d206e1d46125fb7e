"""Docker backend benchmark: three containers to ready, and the second run with reuse.

    python benchmarks/docker/run.py [--rounds 3] [--reuse-rounds 5]

(a) Postgres + Redis + MySQL on Docker, from process start until all three are usable:
    * ours: ``pytest --{postgres,redis,mysql}-backend=docker`` with one test that uses the
      ``postgres``, ``redis`` and ``mysql`` fixtures; the clock stops when the test body runs;
    * plain testcontainers: a Python process that starts ``PostgresContainer(driver="psycopg")``,
      ``MySqlContainer(dialect="pymysql")`` and ``RedisContainer`` one after another with their
      modules' own waits (default polling) and connects to each; the clock stops then.
    Both alternate, median of ``--rounds``; container removal is not timed for either.
(b) ``--reuse-services``: pytest start → first test body on the SECOND run (services kept
    from the first), for the docker and the local backend.

Images: the local test images (``containers/build.sh``). A private runtime dir
(``PYTEST_COMMONS_RUNTIME_DIR``) keeps the reused services apart from anybody else's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGES = {
    "postgres": "pytest-commons/postgres:15",
    "redis": "pytest-commons/redis:7",
    "mysql": "pytest-commons/mariadb:10.11",
}
SERVICES = ("postgres", "redis", "mysql")
LOADED: list[float] = []

# when pytest has loaded its plugins (so plugin import cost can be told apart)
INNER_CONFTEST = """
import os, time

def pytest_configure(config):
    with open(os.environ["BENCH_OUT"] + ".cfg", "w") as fh:
        fh.write(repr(time.time()))
"""

INNER_TEST = """
import os, time

def test_all(postgres, redis, mysql):
    with open(os.environ["BENCH_OUT"], "w") as fh:
        fh.write(repr(time.time()))
"""

# the reuse case once more with a test that needs one service (one driver to import)
INNER_TEST_PG = """
import os, time

def test_pg(postgres):
    with open(os.environ["BENCH_OUT"], "w") as fh:
        fh.write(repr(time.time()))
"""

# the baseline: the same pytest (same plugins) with a test that needs no service
INNER_NOOP = """
import os, time

def test_noop():
    with open(os.environ["BENCH_OUT"], "w") as fh:
        fh.write(repr(time.time()))
"""

TESTCONTAINERS = """
import sys, time
T0 = float(sys.argv[1])
from testcontainers.community.postgres import PostgresContainer
from testcontainers.community.mysql import MySqlContainer
from testcontainers.community.redis import RedisContainer
import psycopg, pymysql

def loopback(c, port):
    c.ports = {str(port): ("127.0.0.1", None)}  # publish on loopback only (random port)
    return c

started = []
try:
    pg = loopback(PostgresContainer(sys.argv[2], driver="psycopg"), 5432)
    started.append(pg); pg.start()
    with psycopg.connect(pg.get_connection_url().replace("postgresql+psycopg", "postgresql")) as c:
        c.execute("select 1")
    my = loopback(MySqlContainer(sys.argv[4], dialect="pymysql"), 3306)
    started.append(my); my.start()
    pymysql.connect(host="127.0.0.1", port=int(my.get_exposed_port(3306)), user=my.username,
                    password=my.password, database=my.dbname).close()
    rd = loopback(RedisContainer(sys.argv[3]), 6379)
    started.append(rd); rd.start()
    assert rd.get_client().ping()
    print(repr(time.time() - T0), flush=True)
finally:
    for c in started:
        try:
            c.stop()
        except Exception as exc:
            print("stop failed:", exc, file=sys.stderr)
"""


def base_env(runtime: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_COMMONS_", "PYTEST_XDIST_", "PYTEST_ADDOPTS"))
    }
    env.pop("CI", None)
    # bytecode caching on, as in a user's venv (this machine's shell sets
    # PYTHONDONTWRITEBYTECODE=1: every run would recompile the editable checkout)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(runtime / "pycache")
    env["PYTEST_COMMONS_RUNTIME_DIR"] = str(runtime)
    for svc, image in IMAGES.items():
        env[f"PYTEST_COMMONS_{svc.upper()}_IMAGE"] = image
    return env


def run_ours(
    work: Path, env: dict[str, str], backend: str, *extra: str, target: str = "test_bench.py"
) -> float:
    """Seconds from starting pytest to the test body running (``LOADED[-1]``: from the end
    of plugin loading, pytest_configure, to the test body)."""
    out = work / "started"
    out.unlink(missing_ok=True)
    args = [f"--{svc}-backend={backend}" for svc in SERVICES]
    t0 = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *extra, target],
        cwd=work,
        env={**env, "BENCH_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not out.exists():
        sys.exit(f"ours ({backend}) failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    body = float(out.read_text())
    LOADED.append(body - float(Path(str(out) + ".cfg").read_text()))
    return body - t0


def run_theirs(env: dict[str, str]) -> float:
    tc_env = {
        **env,
        "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
        "TC_HOST": "127.0.0.1",
        "TESTCONTAINERS_RYUK_DISABLED": "true",
    }
    t0 = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            TESTCONTAINERS,
            repr(t0),
            IMAGES["postgres"],
            IMAGES["redis"],
            IMAGES["mysql"],
        ],
        env=tc_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"testcontainers failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def down(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest_commons.cli", "down"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


def leftovers() -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=pytest-commons"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse-rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--bare",
        action="store_true",
        help="load only pytest-commons (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p pytest_commons."
        "plugin): other installed pytest plugins (faker, hypothesis, anyio...) cost seconds "
        "of import time on a loaded machine",
    )
    args = parser.parse_args()
    flags: tuple[str, ...] = ("-p", "pytest_commons.plugin.hooks") if args.bare else ()

    runtime = Path(tempfile.mkdtemp(prefix="bench-docker-rt-", dir="/dev/shm"))
    runtime.chmod(0o711)  # local servers run as another user and must reach their data dirs
    work = Path(tempfile.mkdtemp(prefix="bench-docker-"))
    (work / "test_bench.py").write_text(INNER_TEST)
    (work / "test_pg.py").write_text(INNER_TEST_PG)
    (work / "conftest.py").write_text(INNER_CONFTEST)
    (work / "test_noop.py").write_text(INNER_NOOP)
    env = base_env(runtime)
    if args.bare:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    results: dict[str, object] = {}
    try:
        # (a) three containers, alternating; one unmeasured warm-up of each (page cache)
        run_ours(work, env, "docker", *flags)
        run_theirs(env)
        ours: list[float] = []
        theirs: list[float] = []
        loaded: list[float] = []
        for i in range(args.rounds):
            ours.append(run_ours(work, env, "docker", *flags))
            loaded.append(LOADED[-1])
            theirs.append(run_theirs(env))
            print(
                f"round {i + 1}: ours {ours[-1]:.2f} s (after plugin load {loaded[-1]:.2f} s)"
                f"   testcontainers {theirs[-1]:.2f} s"
            )
        mo, mt = statistics.median(ours), statistics.median(theirs)
        print(
            f"(a) postgres+redis+mysql on docker, start → usable (median of {args.rounds}): "
            f"ours {mo:.2f} s, testcontainers {mt:.2f} s, ratio {mo / mt:.2f} (target ≤ 0.6)"
        )
        ml = statistics.median(loaded)
        print(
            f"    ours from the end of plugin loading: {ml:.2f} s, ratio {ml / mt:.2f} "
            f"(plugin loading itself: {mo - ml:.2f} s)"
        )
        results["three_containers"] = {
            "ours": ours,
            "ours_after_load": loaded,
            "testcontainers": theirs,
            "ratio": mo / mt,
        }

        # (b) --reuse-services: second run → first test body
        for backend in ("docker", "local"):
            down(env)
            first = run_ours(work, env, backend, *flags, "--reuse-services")
            again, base, pg_only, loaded_again = [], [], [], []
            for _ in range(args.reuse_rounds):  # alternating with the no-service baseline
                again.append(run_ours(work, env, backend, *flags, "--reuse-services"))
                loaded_again.append(LOADED[-1])
                base.append(run_ours(work, env, backend, *flags, target="test_noop.py"))
                pg_only.append(
                    run_ours(work, env, backend, *flags, "--reuse-services", target="test_pg.py")
                )
            after_load = statistics.median(loaded_again)
            plain = run_ours(work, env, backend, *flags)
            m, mb = statistics.median(again), statistics.median(base)
            print(
                f"(b) --reuse-services, {backend}: first run {first:.2f} s, second+ runs "
                f"median {m:.3f} s (min {min(again):.3f}), without reuse {plain:.2f} s, "
                f"ratio second/first {m / first:.2f} (target < 0.5 s); second+ runs from "
                f"the end of plugin loading: {after_load:.3f} s; same pytest with a test that "
                f"needs no service {mb:.3f} s → reuse overhead {m - mb:.3f} s; a test that "
                f"needs only postgres: median {statistics.median(pg_only):.3f} s "
                f"(min {min(pg_only):.3f})"
            )
            results[f"reuse_{backend}"] = {
                "first": first,
                "again": again,
                "baseline_no_service": base,
                "postgres_only": pg_only,
                "no_reuse": plain,
            }
            down(env)
    finally:
        down(env)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
    left = leftovers()
    if left:
        print(f"note: containers labelled pytest-commons still exist: {left}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
