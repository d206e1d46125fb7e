"""The docker backend for real: the same integration suites on containers, and its errors.

Images come from ``containers/build.sh`` (there is no registry here). Without a Docker
engine or the images these tests skip with the reason; under CI they fail instead, because
``.ci/run`` installs the engine and builds the images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_commons.core.cleanup import run_containers
from tests.helpers import commons_cli

HERE = Path(__file__).parent
LOCAL_ONLY = "about the local backend"
LOCAL_IMAGES = {
    "postgres": "pytest-commons/postgres:15",
    "redis": "pytest-commons/redis:7",
    "mysql": "pytest-commons/mariadb:10.11",
}


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must exercise the docker backend: see scripts/setup.sh)")
    pytest.skip(reason)


def docker_images_present(images: list[str]) -> str | None:
    """Why ``images`` cannot run here (no Docker engine, or images not built), or None."""
    from pytest_commons.backends.docker import docker_engine_unreachable

    problem = docker_engine_unreachable()
    if problem:
        return f"{problem}: start Docker (bash scripts/install-docker.sh)"
    present = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    absent = [img for img in images if img not in present]
    if absent:
        what = f"images {absent} are" if len(absent) > 1 else f"image {absent[0]} is"
        return f"{what} not built (bash containers/build.sh)"
    return None


def require_local_images(*services: str) -> dict[str, str]:
    """Environment selecting the locally built images of ``services`` (all by default);
    skips (fails under CI) when Docker or one of them is absent."""
    wanted = {svc: LOCAL_IMAGES[svc] for svc in services or LOCAL_IMAGES}
    problem = docker_images_present(list(wanted.values()))
    if problem:
        _missing(problem)
    return {f"PYTEST_COMMONS_{svc.upper()}_IMAGE": img for svc, img in wanted.items()}


@pytest.fixture(scope="module")
def image_env() -> dict[str, str]:
    """Environment selecting the locally built images; skips when Docker or they are absent."""
    return require_local_images()


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_COMMONS_", "PYTEST_XDIST_", "PYTEST_ADDOPTS"))
    }
    env.pop("CI", None)
    return {**env, **extra}


@pytest.mark.parametrize(
    ("suite", "service"),
    [("test_postgres.py", "postgres"), ("test_redis.py", "redis"), ("test_mysql.py", "mysql")],
)
def test_integration_suite_passes_on_docker(
    image_env: dict[str, str], suite: str, service: str, tmp_path: Path
) -> None:
    if not (HERE / suite).exists():
        pytest.skip(f"{suite} is not part of this tree")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / suite),
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            f"--{service}-backend=docker",
            "--services-missing=fail",
            f"--basetemp={tmp_path}/bt",
        ],
        capture_output=True,
        text=True,
        env=_env(image_env),
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{service:<11} docker" in result.stdout, result.stdout[-2000:]
    # the only skips allowed are the tests that are about the local backend itself
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all(LOCAL_ONLY in line for line in skips), skips


def test_ports_on_loopback_only_and_labelled(
    pytester: pytest.Pytester, image_env: dict[str, str], clean_env: pytest.MonkeyPatch
) -> None:
    for key, value in image_env.items():
        clean_env.setenv(key, value)
    out = pytester.path / "inspect.json"
    pytester.makepyfile(f"""
        import json, subprocess
        def test_inspect(redis, redis_service):
            cid = redis_service.instance.container_id
            data = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True,
                                             text=True, check=True).stdout)[0]
            with open({str(out)!r}, "w") as fh:
                json.dump({{"ports": data["NetworkSettings"]["Ports"],
                           "labels": data["Config"]["Labels"], "id": cid}}, fh)
    """)
    result = pytester.runpytest_subprocess("--redis-backend=docker", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    data = json.loads(out.read_text())
    bindings = [b for port in data["ports"].values() for b in (port or [])]
    assert bindings
    assert all(b["HostIp"] == "127.0.0.1" for b in bindings), bindings
    assert data["labels"]["pytest-commons"] == "1"
    assert data["labels"]["pytest-commons.service"] == "redis"
    gone = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"id={data['id']}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    assert gone == "", "the container must be removed after the run"


def test_kill_9_removes_the_container(image_env: dict[str, str], tmp_path: Path) -> None:
    import signal
    import time

    state = tmp_path / "cid"
    (tmp_path / "test_hold.py").write_text(f"""
import time
def test_hold(redis, redis_service):
    open({str(state)!r}, "w").write(redis_service.instance.container_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:   # held until the outer test kills this run
        time.sleep(0.05)
""")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--redis-backend=docker",
            str(tmp_path / "test_hold.py"),
        ],
        cwd=tmp_path,
        env=_env(image_env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (state.exists() and state.read_text()):
        assert proc.poll() is None, "the inner run ended early"
        assert time.monotonic() < deadline, "the inner run did not start its container"
        time.sleep(0.05)
    cid = state.read_text()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"id={cid}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip():
        assert time.monotonic() < deadline, f"container {cid[:12]} outlived kill -9"
        time.sleep(0.1)


REDIS_TEST = "def test_redis(redis):\n    assert redis.ping()\n"


def test_engine_down_skips_with_the_remedy(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-docker.sock")
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_subprocess("--redis-backend=docker", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*docker: no Docker engine (*no-docker.sock does not exist) "
            "(start Docker (dockerd), or set DOCKER_HOST)*"
        ]
    )


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for unix sockets: pytester's paths can exceed AF_UNIX's 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pc-sock-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_stale_socket_is_engine_down_without_importing_the_sdk(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, socket_dir: Path
) -> None:
    """A socket file nobody listens on (dockerd stopped, the file left): the backend is
    unavailable with the remedy, found without the Docker SDK's imports (auto falls through
    to local at no cost)."""
    import socket

    path = socket_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))  # the file stays after close: nothing listens
    clean_env.setenv("DOCKER_HOST", f"unix://{path}")
    pytester.makeconftest(
        "import sys\n"
        "def pytest_terminal_summary(terminalreporter):\n"
        "    terminalreporter.write_line(f'SDK imported: {\"docker\" in sys.modules}')\n"
    )
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_subprocess("--redis-backend=docker", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SDK imported: False",
            "*docker: no Docker engine answers on *stale.sock (Connection refused) "
            "(start Docker (dockerd), or set DOCKER_HOST)*",
        ]
    )


def test_socket_answering_not_ok_is_reported(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, socket_dir: Path
) -> None:
    """Something that is not a healthy engine answers on the socket: its status is quoted."""
    import socket
    import threading

    path = socket_dir / "odd.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.0 503 Service Unavailable\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    clean_env.setenv("DOCKER_HOST", f"unix://{path}")
    pytester.makepyfile(REDIS_TEST)
    try:
        result = pytester.runpytest_subprocess("--redis-backend=docker", "-rs")
    finally:
        server.close()
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*docker: the Docker engine on *odd.sock answered /_ping with 'HTTP/1.0 503*"]
    )


def test_missing_image_falls_through_under_auto(
    pytester: pytest.Pytester, image_env: dict[str, str], clean_env: pytest.MonkeyPatch
) -> None:
    # a registry on loopback that does not exist: the pull fails without leaving the machine
    clean_env.setenv("PYTEST_COMMONS_REDIS_IMAGE", "127.0.0.1:1/commons/absent:1")
    pytester.makepyfile(REDIS_TEST)
    result = pytester.runpytest_subprocess("--backend-order=docker,local", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["redis       local*"])
    forced = pytester.runpytest_subprocess("--redis-backend=docker", "-rs")
    forced.assert_outcomes(skipped=1)
    forced.stdout.fnmatch_lines(
        ["*image 127.0.0.1:1/commons/absent:1 is not present and cannot be pulled*"]
    )


def test_container_exiting_during_start_quotes_its_log(
    pytester: pytest.Pytester, image_env: dict[str, str], clean_env: pytest.MonkeyPatch
) -> None:
    # the Redis image given Postgres' contract: its entrypoint rejects the command and exits
    clean_env.setenv("PYTEST_COMMONS_POSTGRES_IMAGE", image_env["PYTEST_COMMONS_REDIS_IMAGE"])
    pytester.makepyfile("def test_pg(postgres):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--postgres-backend=docker", "--service-start-timeout=20"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*postgres (docker backend): *"])
    text = result.stdout.str()
    assert "container exited with code" in text or "not ready after 20 s" in text, text[-3000:]
    assert "last lines of docker logs" in text, text[-3000:]


def _kept_containers(runtime: Path) -> list[str]:
    from pytest_commons.core.run import REUSE_DIR, RunContext

    base = runtime / f"pytest-commons-{os.getuid()}" / REUSE_DIR
    # one kept context per service and configuration, each with its own label
    dirs = [base, *(p for p in base.glob("*") if (p / "services").is_dir())]
    return [c for d in dirs for c in run_containers(RunContext(d, 0, "reuse", 1).run_id)]


def test_reuse_keeps_the_container_reattaches_and_down_stops_only_its_own(
    pytester: pytest.Pytester, image_env: dict[str, str], clean_env: pytest.MonkeyPatch
) -> None:
    """--reuse-services on docker: the container outlives the run, the next run attaches to it,
    and `pytest-commons down` from another runtime directory (another user or checkout on
    the same engine) leaves it alone; its own `down` removes it."""
    mine, other = pytester.path / "rt-mine", pytester.path / "rt-other"
    mine.mkdir()
    other.mkdir()
    for key, value in image_env.items():
        clean_env.setenv(key, value)
    clean_env.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(mine))
    pytester.makepyfile(REDIS_TEST)
    args = ("-p", "no:cacheprovider", "--redis-backend=docker", "--reuse-services")
    try:
        pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
        (kept,) = _kept_containers(mine)
        second = pytester.runpytest_subprocess(*args)
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines(["redis       docker*reused (kept running)*"])
        assert _kept_containers(mine) == [kept]
        others_down = commons_cli("down", env=_env({"PYTEST_COMMONS_RUNTIME_DIR": str(other)}))
        assert others_down.returncode == 0, others_down.stderr
        assert _kept_containers(mine) == [kept], "another runtime's `down` removed our container"
    finally:
        down = commons_cli("down", env=_env({"PYTEST_COMMONS_RUNTIME_DIR": str(mine)}))
    assert "stopped redis (docker)" in down.stdout, down.stdout + down.stderr
    assert _kept_containers(mine) == []


def test_removing_by_label_removes_only_the_labelled_containers() -> None:
    """On the real engine (the fake one in the unit tests ignores filters): of four
    containers, only the one with this run's id *and* this service goes."""
    import uuid

    from pytest_commons.backends.docker import RUN_LABEL, SERVICE_LABEL, DockerBackend
    from pytest_commons.plugin.settings import Settings

    image = require_local_images("redis")["PYTEST_COMMONS_REDIS_IMAGE"]
    run, other_run = f"run-{uuid.uuid4().hex[:8]}", f"run-{uuid.uuid4().hex[:8]}"
    labels = {
        "target": {RUN_LABEL: run, SERVICE_LABEL: "redis"},
        "other service": {RUN_LABEL: run, SERVICE_LABEL: "postgres"},
        "other run": {RUN_LABEL: other_run, SERVICE_LABEL: "redis"},
        "unlabelled": {"pytest-commons.test": run},
    }
    created: dict[str, str] = {}
    try:
        for what, pairs in labels.items():
            args = [arg for key, value in pairs.items() for arg in ("--label", f"{key}={value}")]
            created[what] = subprocess.run(
                ["docker", "create", *args, image],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
        DockerBackend(Settings({"redis_image": image}.get))._remove_by_label(run, "redis")
        left = subprocess.run(
            ["docker", "ps", "-aq", "--no-trunc", "--filter", f"id={created['target'][:12]}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()
        assert left == [], "the labelled container was not removed"
        for what in ("other service", "other run", "unlabelled"):
            inspect = subprocess.run(
                ["docker", "inspect", created[what]], capture_output=True, timeout=60, check=False
            )
            assert inspect.returncode == 0, f"the {what} container was removed too"
    finally:
        ids = list(created.values())
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=60, check=False)


def test_mockserver_engine_choice_picks_the_docker_image(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """``--mockserver-engine=commons`` on the docker backend runs pytest-commons' engine image
    (it ran the real MockServer's image, whatever the engine said); an explicit
    ``--mockserver-image`` still wins."""
    from pytest_commons.backends.docker import docker_engine_unreachable
    from pytest_commons.services.mockserver.spec import ENGINE_IMAGE

    problem = docker_engine_unreachable()
    if problem:
        _missing(f"{problem}: start Docker (bash scripts/install-docker.sh)")
    present = subprocess.run(
        ["docker", "images", "-q", ENGINE_IMAGE], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not present:
        _missing(f"image {ENGINE_IMAGE} is not built (bash containers/build.sh)")
    pytester.makepyfile(
        "def test_engine(mockserver_service):\n"
        "    print('ENGINE', mockserver_service.version)\n"
        "    assert mockserver_service.backend == 'docker'\n"
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", "--mockserver-backend=docker", "--mockserver-engine=commons"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ENGINE commons-engine*"])
    explicit = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-rs",
        "--mockserver-backend=docker",
        "--mockserver-engine=commons",
        "--mockserver-image=127.0.0.1:1/commons/absent:1",
    )
    explicit.assert_outcomes(skipped=1)
    explicit.stdout.fnmatch_lines(["*image 127.0.0.1:1/commons/absent:1 is not present*"])
