"""Mutation testing of the isolation and safety code: ``python tests/mutation/run.py [NAME ...]``
(``tox -e mutation``). NAME is a config in this directory (masking, postgres, redis, mysql,
cleanup, options, rabbitmq, mockserver, aws, kafka; default: all).

For each config: ``cosmic-ray init`` (sessions in ``.tox/mutation/``), the scope filter
(:mod:`scope`: only the named functions), ``cosmic-ray exec`` (each mutant: the file is
changed in place, the config's targeted tests run, the file is restored), then the survivors
with their diffs and the score. cosmic-ray edits the source tree: run it on a clean checkout,
not while editing; the run ends by checking that ``git diff`` of the package is empty.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ALL = [
    "masking",
    "postgres",
    "redis",
    "mysql",
    "cleanup",
    "options",
    "rabbitmq",
    "mockserver",
    "aws",
    "kafka",
]


def _run(*cmd: str) -> None:
    subprocess.run(cmd, cwd=ROOT, check=True)


def main(names: list[str]) -> int:
    out = ROOT / ".tox" / "mutation"  # ignored by git, like the rest of .tox
    out.mkdir(parents=True, exist_ok=True)
    totals = {"killed": 0, "survived": 0}
    for name in names or ALL:
        config = HERE / f"{name}.toml"
        session = out / f"{name}.sqlite"
        _run("cosmic-ray", "init", str(config), str(session), "--force")
        _run(sys.executable, str(HERE / "scope.py"), str(config), str(session))
        _run("cosmic-ray", "exec", str(config), str(session))
        _run("cr-report", "--show-pending", str(session))
        with sqlite3.connect(session) as db:
            rows = db.execute(
                "SELECT worker_outcome, test_outcome, COUNT(*) FROM work_results "
                "GROUP BY worker_outcome, test_outcome"
            ).fetchall()
        outcomes = [(str(w).lower(), str(t).lower(), n) for w, t, n in rows]
        killed = sum(n for w, t, n in outcomes if w == "normal" and t == "killed")
        survived = sum(n for w, t, n in outcomes if w == "normal" and t == "survived")
        totals["killed"] += killed
        totals["survived"] += survived
        print(f"mutation {name}: {killed} killed, {survived} survived")
    done = totals["killed"] + totals["survived"]
    score = 100.0 * totals["killed"] / done if done else 0.0
    print(f"mutation score: {totals['killed']}/{done} killed ({score:.1f}%)")
    dirty = subprocess.run(
        ["git", "diff", "--quiet", "--", "pytest_commons"], cwd=ROOT, check=False
    ).returncode
    if dirty:
        print("mutation: pytest_commons/ differs from git after the run: restore it")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
