"""Killing a run while its services are still starting leaves nothing behind.

The run is killed (kill -9, SIGTERM, kill -9 of its whole process group, and with ``-n 2``) at
random moments between 0 and the measured time of a whole run, many times. After each kill the
test polls, with a deadline, until no process of that run is left: found through /proc, not
through the plugin's own bookkeeping (a server's working directory is its data directory under
the run's runtime root; the reaper names the run directory on its command line), and no
container labelled with the killed pytest's pid. The delays are random on purpose: the claim is
about what remains after any kill, not about when the kill lands.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pytest_commons.core.reaper import CREATING_GRACE_SECONDS
from tests.reliability.test_cleanup import _env

pytestmark = pytest.mark.reliability

# kills per variant: 6 in the default run (30 kills, a few minutes); COMMONS_KILL_ITERATIONS=40
# for a thorough hunt (docs/reliability.md)
ITERATIONS = int(os.environ.get("COMMONS_KILL_ITERATIONS", "6"))

INNER = """
def test_one(postgres, redis):
    redis.set("k", "v")

def test_two(postgres, redis):
    redis.get("k")
"""


def _under(root: str, pid: str) -> bool:
    try:
        if os.readlink(f"/proc/{pid}/cwd").startswith(root):
            return True
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return root.encode() in fh.read()
    except OSError:
        return False


def _leftovers(root: str) -> list[int]:
    """Live processes working in, or naming, the runtime root (servers and reapers)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid() and _under(root, pid):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
            except OSError:
                continue
            found.append(int(pid))
    return found


def _containers(owner_pid: int) -> list[str]:
    try:
        out = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=pytest-commons.owner-pid={owner_pid}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return out.stdout.split()


def _describe(pids: list[int]) -> str:
    lines = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().replace(b"\0", b" ").decode(errors="replace")
            lines.append(f"{pid}: {argv}")
        except OSError:
            lines.append(f"{pid}: (gone)")
    return "\n".join(lines)


def _argv(extra: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_inner.py"]


def _spawn(
    tmp_path: Path, runtime: Path, extra: tuple[str, ...], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _argv(extra),
        cwd=tmp_path,
        env={**_env(), "PYTEST_COMMONS_RUNTIME_DIR": str(runtime), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group, so "kill the group" hits pytest and workers only
    )


def _runtime(request: pytest.FixtureRequest) -> Path:
    """A runtime root of its own, reachable by a server user (tmp_path's parents are 0700)."""
    runtime = Path(tempfile.mkdtemp(prefix="commons-kills-"))
    runtime.chmod(0o711)
    request.addfinalizer(lambda: shutil.rmtree(runtime, ignore_errors=True))
    return runtime


KILL_BEFORE_RECORD = """
import os, signal
from pytest_commons.core.run import RunContext

_write = RunContext.write

def write(self, instance):
    if instance.service == "redis" and instance.pid and not instance.ready:
        with open(os.environ["SPAWNED"], "w") as fh:
            fh.write(str(instance.pid))
        os.kill(os.getpid(), signal.SIGKILL)  # spawned, not yet recorded: the worst moment
    _write(self, instance)

RunContext.write = write
"""


def test_a_kill_between_spawn_and_record_leaks_no_server(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The window the random kills hit only sometimes, hit every time: pytest dies after the
    server process exists and before any record names it."""
    (tmp_path / "test_inner.py").write_text("def test_one(redis):\n    pass\n")
    (tmp_path / "conftest.py").write_text(KILL_BEFORE_RECORD)
    runtime = _runtime(request)
    spawned = tmp_path / "spawned"
    proc = _spawn(tmp_path, runtime, (), {"SPAWNED": str(spawned)})
    assert proc.wait(timeout=120) == -signal.SIGKILL
    pid = int(spawned.read_text())
    deadline = time.monotonic() + 60
    while (left := _leftovers(str(runtime))) and time.monotonic() < deadline:
        time.sleep(0.05)
    for leaked in left:
        os.kill(leaked, signal.SIGKILL)
    assert not left, f"left running (the server was {pid}):\n{_describe(left)}"


DOCKER = ("--redis-backend=docker", "--postgres-backend=docker")


@pytest.mark.parametrize(
    ("sig", "target", "extra"),
    [
        (signal.SIGKILL, "pytest", ()),
        (signal.SIGTERM, "pytest", ()),
        (signal.SIGKILL, "group", ()),
        (signal.SIGKILL, "pytest", ("-n", "2")),
        (signal.SIGKILL, "pytest", DOCKER),
    ],
    ids=["kill-9", "sigterm", "kill-9-group", "kill-9-xdist", "kill-9-docker"],
)
def test_a_kill_during_startup_leaks_no_server(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    sig: signal.Signals,
    target: str,
    extra: tuple[str, ...],
) -> None:
    if "-n" in extra:
        pytest.importorskip("xdist")
    env = {}
    if extra == DOCKER:
        from tests.integration.test_docker_backend import require_local_images

        env = require_local_images("redis", "postgres")
    (tmp_path / "test_inner.py").write_text(INNER)
    runtime = _runtime(request)
    root = str(runtime)
    # the measured time of one whole run (start-up included) bounds the random delays
    began = time.monotonic()
    whole = subprocess.run(
        _argv(extra),
        cwd=tmp_path,
        env={**_env(), "PYTEST_COMMONS_RUNTIME_DIR": str(runtime), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert whole.returncode == 0, "a run that is not killed passes:\n" + whole.stdout
    span = time.monotonic() - began
    rng = random.Random()
    leaks: list[str] = []
    for i in range(ITERATIONS):
        delay = rng.uniform(0, span)
        proc = _spawn(tmp_path, runtime, extra, env)
        time.sleep(delay)  # a random moment of the start-up: what remains is the claim
        if target == "group":
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        proc.wait(timeout=60)
        # a kill between a Docker creation's marker and its request leaves the reaper waiting
        # its grace for a container that may still come: a leak is what outlives that bound
        deadline = time.monotonic() + CREATING_GRACE_SECONDS + 60
        while (left := _leftovers(root)) or _containers(proc.pid):
            if time.monotonic() > deadline:
                leaks.append(f"iteration {i}, killed after {delay:.2f}s:\n{_describe(left)}")
                for pid in left:  # leave the machine clean even when the test fails
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    assert not leaks, f"{len(leaks)} of {ITERATIONS} kills leaked:\n" + "\n".join(leaks)
