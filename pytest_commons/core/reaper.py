"""The reaper: a small process that outlives pytest if pytest is killed.

It watches the owner (the pytest process, or the xdist controller). When the run directory
disappears the run ended in order and the reaper exits; when the owner disappears first
(kill -9, a crash) it stops every instance recorded in the run directory and removes the
directory. Where there is ``/proc``, a shell loop does the watching (``_run._WATCH_SH``) and runs
``python -m pytest_commons.core.reaper --reap RUN_DIR`` only when there is something to reap;
elsewhere ``python -m pytest_commons.core.reaper --watch OWNER_PID RUN_DIR [PYTHON]`` watches too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_commons.core.run import RunContext

POLL_SECONDS = 0.2


def main(argv: list[str]) -> int:
    if argv[:1] == ["--reap"]:
        reap(Path(argv[1]))
        return 0
    if argv[:1] == ["--watch"]:
        argv = argv[1:]
    owner_pid, run_dir = int(argv[0]), Path(argv[1])
    from pytest_commons.core.run import process_start_time

    owner_start = process_start_time(owner_pid)
    while True:
        if not run_dir.exists():
            return 0
        current = process_start_time(owner_pid)
        if current is None or (owner_start not in (None, "?") and current != owner_start):
            break
        time.sleep(POLL_SECONDS)
    reap(run_dir)
    return 0


def reap(run_dir: Path) -> None:
    """Stop everything the run at ``run_dir`` started and remove the directory.

    The run is marked closing first, so a server some process is spawning right now (an xdist
    worker outlives its controller for a while) either does not start or carries the run's
    mark and is swept; containers are swept by the run's label after the records.
    """
    from pytest_commons.core.cleanup import stop_instance, sweep_run_processes
    from pytest_commons.core.run import Instance, RunContext

    ctx = RunContext(run_dir, 0, "reaper", 1)
    ctx.mark_closing()
    for record in sorted((run_dir / "services").glob("*.json")):
        try:
            instance = Instance.from_json(record.read_text())
        except (OSError, ValueError):
            continue
        if instance.reused:
            continue  # --reuse-services: kept on purpose
        stop_instance(instance)
    sweep_run_processes(str(run_dir))
    if (run_dir / "docker-used").exists():
        sweep_docker(ctx)
    ctx.destroy()


CREATING_GRACE_SECONDS = 60.0


def sweep_docker(ctx: RunContext) -> None:
    """Remove the run's containers by label; while a creation was under way when the owner
    died (a ``<service>.creating`` marker), keep sweeping until that many containers were
    found (the engine finishes a create it received) or ``CREATING_GRACE_SECONDS`` pass."""
    from pytest_commons.core.cleanup import run_containers, sweep_run_containers

    pending = len(list(ctx.services_dir.glob("*.creating")))
    seen: set[str] = set()
    deadline = time.monotonic() + CREATING_GRACE_SECONDS
    while True:
        seen.update(run_containers(ctx.run_id))
        sweep_run_containers(ctx.run_id)
        if len(seen) >= pending or time.monotonic() > deadline:
            return
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
