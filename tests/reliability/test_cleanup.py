"""Nothing is left running: after kill -9, Ctrl-C, with xdist, and with concurrent runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.reliability

HOLDING_TEST = """
import json, os, time

def test_hold(postgres, redis, postgres_service, redis_service, request):
    from pytest_commons.plugin.state import get_registry
    ctx = get_registry(request.config).ctx
    state = {{
        "pids": [postgres_service.instance.pid, redis_service.instance.pid],
        "run_dir": str(ctx.run_dir),
        "pytest_pid": os.getpid(),
    }}
    with open({out!r} + ".tmp", "w") as fh:
        json.dump(state, fh)
    os.replace({out!r} + ".tmp", {out!r})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:   # held until the outer test kills this run
        time.sleep(0.05)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_COMMONS_", "PYTEST_XDIST_", "PYTEST_ADDOPTS")) and k != "CI"
    }
    env["PYTHONUNBUFFERED"] = "1"
    # inner runs keep their file order (holding tests count on it): no pytest-randomly there
    env["PYTEST_ADDOPTS"] = "-p no:randomly"
    return env


def _start_holding_run(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict]:  # type: ignore[type-arg]
    out = tmp_path / "state.json"
    (tmp_path / "test_hold.py").write_text(HOLDING_TEST.format(out=str(out)))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *extra,
            str(tmp_path / "test_hold.py"),
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    _wait_for(lambda: out.exists() or proc.poll() is not None, 60, "the inner run to start")
    if not out.exists():
        pytest.fail("inner run ended early:\n" + proc.communicate()[0].decode())
    return proc, json.loads(out.read_text())


def _kill_9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the inner pytest, reap it and close our end of its output pipe (left open, it is
    a ResourceWarning: an error under the project's filterwarnings)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()


def _assert_all_gone(state: dict) -> None:  # type: ignore[type-arg]
    for pid in state["pids"]:
        _wait_for(lambda pid=pid: not _alive(pid), 15, f"server pid {pid} to exit")
    _wait_for(lambda: not Path(state["run_dir"]).exists(), 15, "the run directory to be removed")


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_kill_9_of_pytest_leaves_nothing(tmp_path: Path, xdist: bool) -> None:
    extra = ("-n", "1") if xdist else ()
    if xdist:
        pytest.importorskip("xdist")
    proc, state = _start_holding_run(tmp_path, *extra)
    assert all(_alive(pid) for pid in state["pids"])
    _kill_9(proc)
    _assert_all_gone(state)


def test_ctrl_c_stops_servers(tmp_path: Path) -> None:
    proc, state = _start_holding_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=30)[0].decode()
    assert "KeyboardInterrupt" in output
    _assert_all_gone(state)


def test_two_runs_at_once_do_not_collide(tmp_path: Path) -> None:
    test = """
import os
def test_both(postgres, redis, postgres_service, redis_service):
    with postgres.connect() as conn:
        conn.execute("create table t (x int)")
        conn.execute("insert into t values (1)")
    redis.set("k", os.getpid())
    assert redis.get("k") == str(os.getpid()).encode()
    with open(os.environ["OUT"], "w") as fh:
        fh.write(f"{postgres_service.info.port} {redis_service.info.port}")
"""
    procs = []
    for i in range(2):
        run = tmp_path / f"run{i}"
        run.mkdir()
        (run / "test_both.py").write_text(test)
        env = {**_env(), "OUT": str(run / "out")}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                cwd=run,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
    ports = [(tmp_path / f"run{i}" / "out").read_text().split() for i in range(2)]
    assert ports[0][0] != ports[1][0]
    assert ports[0][1] != ports[1][1]


def test_a_normal_run_leaves_no_run_directory(tmp_path: Path) -> None:
    from pytest_commons.core.run import runtime_root

    (tmp_path / "test_one.py").write_text("def test_one(redis):\n    assert redis.ping()\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 0, output
    # run directories are named run-<owner pid>-<random>: none of this run's may remain
    assert not list(runtime_root().glob(f"run-{proc.pid}-*"))


def _hold(
    tmp_path: Path, holding: str, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], dict]:  # type: ignore[type-arg]
    """Start an inner run of ``holding`` (a test that writes its state, then waits) with
    ``env`` added; return it and the state once written (a JVM or an Erlang node: 90 s)."""
    out = tmp_path / "state.json"
    (tmp_path / "test_hold.py").write_text(holding.format(out=str(out)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hold.py"],
        cwd=tmp_path,
        env={**_env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    _wait_for(lambda: out.exists() or proc.poll() is not None, 90, "the inner run to start")
    if not out.exists():
        pytest.fail("inner run ended early:\n" + proc.communicate()[0].decode())
    return proc, json.loads(out.read_text())


HOLDING_MOCKSERVER = """
import json, os, time

def test_hold(mockserver, mockserver_service, request):
    from pytest_commons.plugin.state import get_registry
    assert mockserver_service.version.startswith("mockserver "), mockserver_service.version
    state = {{
        "pids": [mockserver_service.instance.pid],
        "run_dir": str(get_registry(request.config).ctx.run_dir),
    }}
    with open({out!r} + ".tmp", "w") as fh:
        json.dump(state, fh)
    os.replace({out!r} + ".tmp", {out!r})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
"""


def test_kill_9_reaps_the_real_mockserver(tmp_path: Path) -> None:
    """Issue 16: the JVM of --mockserver-engine=java is reaped like every local server."""
    from tests.helpers import mockserver_engine_name

    if mockserver_engine_name() != "java":
        if os.environ.get("CI"):
            pytest.fail("the real MockServer is not here: pytest-commons fetch mockserver")
        pytest.skip("the real MockServer is not here (Java and `pytest-commons fetch mockserver`)")
    env = {"PYTEST_COMMONS_MOCKSERVER_ENGINE": "java", "PYTEST_COMMONS_MOCKSERVER_BACKEND": "local"}
    proc, state = _hold(tmp_path, HOLDING_MOCKSERVER, env)
    assert all(_alive(pid) for pid in state["pids"])
    _kill_9(proc)
    _assert_all_gone(state)


HOLDING_RABBITMQ = """
import json, os, time
from pathlib import Path

def test_hold(rabbitmq, rabbitmq_service, request):
    from pytest_commons.plugin.state import get_registry
    node = rabbitmq_service.instance.pid
    group = os.getpgid(node)
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group:
                    members.append(int(entry.name))
            except ProcessLookupError:
                pass
    names = {{Path(f"/proc/{{p}}/comm").read_text().strip() for p in members}}
    assert {{"beam.smp", "epmd"}} <= names, names
    state = {{"pids": members, "run_dir": str(get_registry(request.config).ctx.run_dir)}}
    with open({out!r} + ".tmp", "w") as fh:
        json.dump(state, fh)
    os.replace({out!r} + ".tmp", {out!r})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
"""


def test_kill_9_reaps_the_rabbitmq_node_and_its_epmd(tmp_path: Path) -> None:
    """Issue 18: the Erlang node and the private epmd beside it go with a killed run."""
    proc, state = _hold(tmp_path, HOLDING_RABBITMQ, {"PYTEST_COMMONS_RABBITMQ_BACKEND": "local"})
    assert len(state["pids"]) >= 2
    assert all(_alive(pid) for pid in state["pids"])
    _kill_9(proc)
    _assert_all_gone(state)


LEADER_DIES = """
import json, os, signal, time
from pathlib import Path

def test_the_node_dies_and_nothing_else_uses_it(rabbitmq_service):
    node = rabbitmq_service.instance.pid
    group = os.getpgid(node)
    members = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()
               and _pgid(int(e.name)) == group]
    Path({out!r}).write_text(json.dumps(members))
    os.kill(node, signal.SIGKILL)  # its epmd, in the same process group, lives on

def _pgid(pid):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
"""


def test_a_server_whose_leader_died_leaves_nothing_even_when_the_run_passes(
    tmp_path: Path,
) -> None:
    """A passing run whose server's group leader died mid-run (a killed RabbitMQ node; its epmd
    lives on in the group) still leaves no process behind."""
    out = tmp_path / "members.json"
    (tmp_path / "test_dies.py").write_text(LEADER_DIES.format(out=str(out)))
    env = {**_env(), "PYTEST_COMMONS_RABBITMQ_BACKEND": "local"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_dies.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    members = json.loads(out.read_text())
    assert len(members) >= 2  # the node and its epmd
    for pid in members:
        _wait_for(lambda pid=pid: not _alive(pid), 15, f"process {pid} of the dead server to go")
