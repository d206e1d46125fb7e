"""Where the wall time of the 100-test Postgres suites goes: a phase timeline.

Runs the suites of ``benchmarks/core/run.py`` (``postgres`` fresh database, ``postgres_tx``
rollback, and plain pytest) as the same unprivileged user and virtualenv, with
``timeline_plugin`` (this directory) recording when each phase begins and ends, alternating the
suites for ``--rounds`` rounds, and prints the median of every phase::

    python benchmarks/core/timeline.py --rounds 5

Times are milliseconds from the moment the ``pytest`` process was spawned; "per test" rows are
medians over the 100 tests of every round (then the median of those), "sum" rows add a phase up
over the run. Background phases (cloning ahead, dropping) run on threads beside the tests.
"""

from __future__ import annotations

import argparse
import itertools
import json
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
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

SUITES = ["commons postgres (fresh db)", "commons postgres_tx (rollback)", "plain pytest (floor)"]


def one_run(
    prefix: list[str], python: str, workdir: Path, name: str, env: dict[str, str]
) -> dict[str, object]:
    test_file = workdir / f"test_{abs(hash(name))}.py"
    out = workdir / "timeline.json"
    if out.exists():
        out.unlink()
    extra = ["-p", "timeline_plugin", *bench.SUITES[name][1]]
    cmd = [*prefix, python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(test_file)]
    spawned = time.time()
    result = subprocess.run(
        cmd, cwd=workdir, env={**env, "TIMELINE_OUT": str(out)}, capture_output=True, text=True
    )
    ended = time.time()
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    data: dict[str, object] = json.loads(out.read_text())
    data["spawned"], data["ended"] = spawned, ended
    return data


def phases(data: dict[str, object]) -> dict[str, float]:
    """Milliseconds of each phase of one run (see the module docstring)."""
    t0 = float(data["spawned"])  # type: ignore[arg-type]
    events = data["events"]
    assert isinstance(events, list)

    def ms(t: float) -> float:
        return (t - t0) * 1000

    by: dict[str, list[tuple[str, float, float]]] = {}
    for label, thread, start, end in events:
        by.setdefault(label, []).append((thread, start, end))

    def first(label: str) -> tuple[float, float] | None:
        got = by.get(label)
        return (got[0][1], got[0][2]) if got else None

    row: dict[str, float] = {}
    row["spawn → pytest imported, plugins loading (timeline plugin imported)"] = ms(
        float(data["imported"])  # type: ignore[arg-type]
    )
    conf = first("configure (first hook)")
    if conf:
        row["spawn → pytest_configure"] = ms(conf[0])
    ss = first("sessionstart (last hook)")
    if ss:
        row["spawn → session started"] = ms(ss[0])
    coll = first("collection")
    if coll:
        row["collection (ms)"] = (coll[1] - coll[0]) * 1000
        row["spawn → collection done"] = ms(coll[1])
    acq = first("server: acquire (start or attach)")
    if acq:
        row["server: acquire begins at"] = ms(acq[0])
        row["server: acquire ends at"] = ms(acq[1])
        row["server: acquire (ms)"] = (acq[1] - acq[0]) * 1000
    for label in (
        "server: load spec",
        "server: local backend available?",
        "server: start the reaper",
        "server: copy cached cluster",
        "server: spawn",
        "server: spawn → ready",
        "server: set password",
    ):
        got = first(label)
        if got:
            row[label + " (ms)"] = (got[1] - got[0]) * 1000
    writes = [(e - s) * 1000 for _t, s, e in by.get("server: write instance record", [])]
    if writes:
        row["server: write instance records (ms, sum)"] = sum(writes)
    tests = by.get("test: whole protocol", [])
    if tests:
        row["first test begins at"] = ms(tests[0][1])
        setups = by.get("test: setup", [])
        row["first test's setup (ms)"] = (setups[0][2] - setups[0][1]) * 1000
        row["last test ends at"] = ms(tests[-1][2])
        row["tests 2..100 (ms)"] = (tests[-1][2] - tests[1][1]) * 1000 if len(tests) > 1 else 0
        for label in ("test: setup", "test: call", "test: teardown", "test: whole protocol"):
            durations = [(e - s) * 1000 for _t, s, e in by.get(label, [])[1:]]
            if durations:
                row[f"per test: {label[6:]} (ms, median of tests 2..)"] = statistics.median(
                    durations
                )
        gaps = [(b[1] - a[2]) * 1000 for a, b in itertools.pairwise(tests)]
        if gaps:
            row["per test: between tests (ms, median)"] = statistics.median(gaps)
    for label in (
        "take (wait for clone)",
        "clone now",
        "clone ahead (thread)",
        "CREATE DATABASE",
        "test: connect",
        "test: close connections",
        "drop database",
    ):
        durations = [(e - s) * 1000 for _t, s, e in by.get(label, [])]
        if durations:
            row[f"per call: {label} (ms, median; n={len(durations)})"] = statistics.median(
                durations
            )
            row[f"sum: {label} (ms)"] = sum(durations)
    fin = first("sessionfinish (incl. session fixtures' teardown)")
    if fin:
        row["session end: sessionfinish (ms)"] = (fin[1] - fin[0]) * 1000
    for label in (
        "session end: pool close (all)",
        "session end: pool helpers stop",
        "session end: stop services (all)",
        "session end: registry shutdown",
        "session end: stop server",
        "session end: signal server, wait for exit",
        "session end: remove run dir",
    ):
        got = first(label)
        if got:
            row[label + " (ms)"] = (got[1] - got[0]) * 1000
    unc = first("unconfigure")
    if unc:
        row["session end: unconfigure (ms)"] = (unc[1] - unc[0]) * 1000
        row["unconfigure done at"] = ms(unc[1])
    began = first("atexit handlers begin")
    if began:
        row["atexit handlers begin at"] = ms(began[0])
    row["atexit at"] = ms(float(data["exit"]))  # type: ignore[arg-type]
    row["process exit (wall) at"] = ms(float(data["ended"]))  # type: ignore[arg-type]
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write every run's phases to this file")
    opts = parser.parse_args()
    prefix, python = bench.prepare()
    workdir = Path(tempfile.mkdtemp(prefix="pc-timeline-"))
    os.chmod(workdir, 0o777)
    shutil.copy(HERE / "timeline_plugin.py", workdir / "timeline_plugin.py")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_COMMONS_", "PYTEST_ADDOPTS")) and k != "CI"
    }
    env["HOME"] = pwd.getpwnam(bench.USER).pw_dir if prefix else env.get("HOME", "/tmp")
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    pycache = workdir / "pycache"
    pycache.mkdir()
    if prefix:
        shutil.chown(pycache, bench.USER)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYTHONPATH"] = str(workdir)
    for name in SUITES:
        (workdir / f"test_{abs(hash(name))}.py").write_text(bench.SUITES[name][0].format(n=bench.N))
    for name in SUITES:  # warm-up
        one_run(prefix, python, workdir, name, env)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in SUITES}
    for _ in range(opts.rounds):
        for name in SUITES:
            rows[name].append(phases(one_run(prefix, python, workdir, name, env)))
    shutil.rmtree(workdir, ignore_errors=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(rows, indent=1))
    labels: list[str] = []
    for name in SUITES:
        for row in rows[name]:
            labels += [k for k in row if k not in labels]
    print(f"| phase (median of {opts.rounds} runs) | " + " | ".join(SUITES) + " |")
    print("|---|" + "---:|" * len(SUITES))
    for label in labels:
        cells = []
        for name in SUITES:
            values = [row[label] for row in rows[name] if label in row]
            cells.append(f"{statistics.median(values):.1f}" if values else "")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
