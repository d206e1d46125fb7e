"""pytest-commons' MySQL fixtures against pytest-mysql 5: 100 one-insert tests, whole pytest
process timed, all variants interleaved in the same run; prints medians and ratios, against
pytest-mysql as installed (its data directory under pytest's temp dir, on disk) and against the
fair peer: the same with ``--basetemp`` on the tmpfs (``/dev/shm``) pytest-commons uses.

    python benchmarks/mysql/run.py [--rounds 3] [--user nobody] [--clone-only]

pytest-mysql cannot run as root (mariadb-install-db/mysqld refuse, and it chowns to root), so
when this script runs as root every suite runs as an unprivileged user (``--user``, default
nobody) from a virtualenv that user can read (``/opt/pc-bench-venv``, made with the system
Python and ``pip install pytest-mysql pymysql -e <repo>`` if missing). pytest-commons is also
timed as root (its normal CI situation: the server drops to an unprivileged user by itself).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV = Path(os.environ.get("PC_BENCH_VENV", "/opt/pc-bench-venv"))
PLAIN = """
import pytest

@pytest.mark.parametrize("n", range(100))
def test_plain(n):
    assert n >= 0
"""
CLONE = """
import time, pytest
from pytest_commons.services.mysql.fixtures import _capture
from pytest_commons.services.mysql.spec import MysqlSpec

N = %d

def _schema(cur, db, tables):
    for i in range(tables):
        cur.execute(f"CREATE TABLE `{db}`.t{i} (id INT AUTO_INCREMENT PRIMARY KEY, "
                    f"name VARCHAR(50) NOT NULL, parent INT, KEY k (name))")

@pytest.mark.parametrize("tables", [0, 1, 10])
def test_clone_strategies(mysql_service, tables):
    from pymysql.constants import CLIENT
    spec = MysqlSpec()
    admin = spec.connect(mysql_service.info, client_flag=CLIENT.MULTI_STATEMENTS)
    cur = admin.cursor()
    cur.execute("CREATE DATABASE bench_tpl")
    _schema(cur, "bench_tpl", tables)
    cap = _capture(admin, "bench_tpl")
    out = {}
    for strategy in ("replay", "like", "empty"):
        times = []
        for i in range(N):
            name = f"bench_{strategy}_{i}"
            t0 = time.perf_counter()
            if strategy == "replay":
                cur.execute(cap.clone_sql("bench_tpl", name))
                while cur.nextset():
                    pass
            elif strategy == "like":
                cur.execute(f"CREATE DATABASE {name}")
                for t in range(tables):
                    cur.execute(f"CREATE TABLE {name}.t{t} LIKE bench_tpl.t{t}")
            else:
                cur.execute(f"CREATE DATABASE {name}")
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(N):
            cur.execute(f"DROP DATABASE bench_{strategy}_{i}")
        out[strategy] = (statistics.median(times) * 1000, (time.perf_counter() - t0) / N * 1000)
    cur.execute("DROP DATABASE bench_tpl")
    print(f"\\nCLONE tables={tables} " + " ".join(
        f"{k}={v[0]:.2f}ms(drop {v[1]:.2f}ms)" for k, v in out.items()))
""".replace("import time, pytest", "import statistics, time, pytest")
CLONE_N = 30
CLONE = CLONE % CLONE_N


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "pytest-mysql", "pymysql", "-e", str(REPO)],
            check=True,
        )
    return python


def timed(argv: list[str], cwd: Path, env: dict[str, str], user: str | None) -> tuple[float, str]:
    if user:
        argv = ["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *argv]
        run_env = dict(os.environ)
    else:
        run_env = {**os.environ, **env}
    for key in list(run_env):
        if key.startswith(("PYTEST_COMMONS_", "PYTEST_ADDOPTS")) and key not in env:
            del run_env[key]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=run_env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    last = tail[-1] if tail else ""
    if proc.returncode != 0:
        return float("nan"), "\n".join(tail[-25:])
    return elapsed, last


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--user", default="nobody")
    parser.add_argument("--clone-only", action="store_true")
    args = parser.parse_args()

    root = os.geteuid() == 0
    user = args.user if root else None
    work = Path(tempfile.mkdtemp(prefix="pc-mysql-bench-"))
    os.chmod(work, 0o755)
    for name in ("suite_fresh.py", "suite_tx.py", "suite_peer.py"):
        shutil.copy(HERE / name, work / f"test_{name.removeprefix('suite_')}")
    (work / "test_plain.py").write_text(PLAIN)
    (work / "test_clone.py").write_text(CLONE)
    (work / "home").mkdir()
    if user:
        entry = pwd.getpwnam(user)
        for path in [work, *work.iterdir()]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
    venv_python = str(ensure_venv()) if (user or not root) else sys.executable
    shm = Path(tempfile.mkdtemp(prefix="pc-mysql-peer-", dir="/dev/shm"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(shm, entry.pw_uid, entry.pw_gid)
    base = ["-q", "-p", "no:cacheprovider"]
    user_env = {
        "HOME": str(work / "home"),
        "PYTEST_COMMONS_COMMONS_CACHE_DIR": str(work / "home" / "cache"),
        "PYTEST_COMMONS_MYSQL_BACKEND": "local",
    }
    pc = [*base, "-p", "no:pytest_mysql"]
    peer = [*base, "-p", "no:commons", "--mysql-user", user or pwd.getpwuid(os.geteuid())[0]]
    peer += ["--mysql-dbname", "pmtest"]

    run_env = {**user_env}
    prefix = ["runuser", "-u", user, "--"] if user else []
    proc = subprocess.run(
        [
            *prefix,
            "env",
            *[f"{k}={v}" for k, v in run_env.items()],
            venv_python,
            "-m",
            "pytest",
            *pc,
            "-s",
            "test_clone.py",
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    print(f"clone strategies (median ms per database, {CLONE_N} each; drop ms per database):")
    for line in proc.stdout.splitlines():
        if line.startswith("CLONE"):
            print("  " + line.removeprefix("CLONE "))
    if proc.returncode != 0:
        print(proc.stdout[-3000:])
    if args.clone_only:
        return 0

    if root:  # pytest-mysql as root, once: does it work at all?
        secs, out = timed(
            [
                venv_python,
                "-m",
                "pytest",
                *base,
                "-p",
                "no:commons",
                "-x",
                "--mysql-dbname",
                "pmtest",
                "test_peer.py",
            ],
            work,
            {},
            None,
        )
        first_error = next((ln for ln in out.splitlines() if ln.startswith("E ")), out[-200:])
        print(f"pytest-mysql 5 as root: {'works' if secs == secs else 'FAILS: ' + first_error}")

    variants: dict[str, tuple[list[str], dict[str, str], str | None]] = {
        "plain pytest (100 trivial tests)": (
            [venv_python, "-m", "pytest", *base, "-p", "no:pytest_mysql", "test_plain.py"],
            user_env,
            user,
        ),
        "pytest-commons mysql (fresh db)": (
            [venv_python, "-m", "pytest", *pc, "test_fresh.py"],
            user_env,
            user,
        ),
        "pytest-commons mysql_tx (rollback)": (
            [venv_python, "-m", "pytest", *pc, "test_tx.py"],
            user_env,
            user,
        ),
        "pytest-mysql 5 mysql (fresh db)": (
            [venv_python, "-m", "pytest", *peer, "test_peer.py"],
            {"HOME": str(work / "home")},
            user,
        ),
        # the fair peer: its data directory (under pytest's basetemp) on the same tmpfs as ours
        "pytest-mysql 5 on tmpfs (fresh db)": (
            [venv_python, "-m", "pytest", *peer, f"--basetemp={shm}/bt", "test_peer.py"],
            {"HOME": str(work / "home")},
            user,
        ),
    }
    if root:
        # Faker's own pytest plugin (installed next to the project's Python, absent from the
        # venv the other suites run in) imports its providers at start: not what is measured
        no_faker = ["-p", "no:faker"]
        root_env = {
            "PYTEST_COMMONS_COMMONS_CACHE_DIR": str(work / "root-cache"),
            "PYTEST_COMMONS_MYSQL_BACKEND": "local",
        }
        variants["pytest-commons mysql, as root"] = (
            [sys.executable, "-m", "pytest", *pc, *no_faker, "test_fresh.py"],
            root_env,
            None,
        )
        variants["pytest-commons mysql_tx, as root"] = (
            [sys.executable, "-m", "pytest", *pc, *no_faker, "test_tx.py"],
            root_env,
            None,
        )

    # warm-up (caches: pytest-commons' initialised data directory, the page cache)
    for label, (argv, env, who) in variants.items():
        secs, out = timed(argv, work, env, who)
        if secs != secs:
            print(f"{label}: FAILED\n    " + out.replace("\n", "\n    "))
    results: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(args.rounds):
        for label, (argv, env, who) in variants.items():
            secs, out = timed(argv, work, env, who)
            results[label].append(secs)
    print(
        f"\nwhole pytest process, median of {args.rounds} interleaved rounds"
        f"{f' (suites run as {user!r})' if user else ''}:"
    )
    med = {}
    for label, values in results.items():
        ok = [v for v in values if v == v]
        med[label] = statistics.median(ok) if ok else float("nan")
        shown = "FAILED" if not ok else f"{med[label]:7.2f} s"
        print(f"  {label:38s} {shown}   runs: " + ", ".join(f"{v:.2f}" for v in values))
    for peer_label in ("pytest-mysql 5 mysql (fresh db)", "pytest-mysql 5 on tmpfs (fresh db)"):
        peer_s = med[peer_label]
        print(f"\nratios to {peer_label} (targets: fresh ≤ 0.33, rollback ≤ 0.10):")
        for label in ("pytest-commons mysql (fresh db)", "pytest-commons mysql_tx (rollback)"):
            print(f"  {label:38s} {med[label] / peer_s:.3f}")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(shm, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
