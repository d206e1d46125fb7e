"""The backends' fault injection and start failures against real servers: a local redis-server,
and Redis containers from the locally built image (see ``test_docker_backend.py``; without an
engine or the image the docker tests skip, under CI they fail). Every container here carries
this test's run label and is removed by it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_commons.backends.docker import DockerBackend
from pytest_commons.backends.local import LocalBackend
from pytest_commons.core.cleanup import run_containers, stop_instance, sweep_run_containers
from pytest_commons.core.run import RunContext
from pytest_commons.errors import ProbeRefused, ServiceStartError
from pytest_commons.plugin.settings import Settings
from pytest_commons.services.base import DockerLaunch
from pytest_commons.services.redis.spec import RedisInfo, RedisSpec
from tests.integration.test_docker_backend import LOCAL_IMAGES, require_local_images

REDIS_IMAGE = LOCAL_IMAGES["redis"]


def _settings(**values: str) -> Settings:
    return Settings({"service_start_timeout": "60", **values}.get)


@pytest.fixture
def ctx() -> Iterator[RunContext]:
    """A run of our own: its records, and the label on the containers we start."""
    run = RunContext.create()
    yield run
    for inst in run.instances():
        stop_instance(inst)
    if (run.run_dir / "docker-used").exists():
        sweep_run_containers(run.run_id)  # only containers labelled with this run
    shutil.rmtree(run.run_dir, ignore_errors=True)


def _until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# local ------------------------------------------------------------------------------------------


def _proc_state(pid: int) -> str | None:
    """The kernel's state letter of a process (R, S, T, Z …), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _running(pid: int) -> bool:
    return _proc_state(pid) not in (None, "Z")


@pytest.fixture
def local_redis() -> RedisSpec:
    spec = RedisSpec(_settings())
    missing = spec.local_unavailable()
    if missing:
        pytest.skip(f"{missing[0]} ({missing[1]})")
    if not Path("/proc/self/stat").exists():
        pytest.skip("reads process states from /proc")
    return spec


def test_local_pause_resume_stop_and_restart(local_redis: RedisSpec, ctx: RunContext) -> None:
    backend = LocalBackend(_settings())
    inst = backend.start(local_redis, ctx)
    try:
        first = inst.pid
        assert first
        assert inst.ready
        assert inst.version
        info = local_redis.info_from_dict(inst.info)

        backend.pause(inst)
        assert _until(lambda: _proc_state(first) == "T"), _proc_state(first)
        backend.resume(inst)
        assert _until(lambda: _proc_state(first) in ("R", "S")), _proc_state(first)
        assert local_redis.probe(info, timeout=5) == inst.version

        backend.stop_only(inst)
        assert not _running(first)

        again = backend.restart(local_redis, inst, None)
        assert again is inst
        assert inst.pid
        assert inst.pid != first
        assert _running(inst.pid)
        assert local_redis.probe(info, timeout=5) == inst.version  # same port, answering
        record = ctx.read("redis")
        assert record is not None
        assert record.pid == first
    finally:
        backend.stop(inst)
    assert not _running(inst.pid)
    assert not any(Path(p).exists() for p in inst.paths)


class InterruptedRedis(RedisSpec):
    """Ctrl-C arrives while the readiness wait is probing."""

    def probe(self, info: RedisInfo, timeout: float) -> str:
        raise KeyboardInterrupt


def test_local_start_interrupted_kills_the_server(local_redis: RedisSpec, ctx: RunContext) -> None:
    with pytest.raises(KeyboardInterrupt):
        LocalBackend(_settings()).start(InterruptedRedis(_settings()), ctx)
    record = ctx.read("redis")
    assert record is not None
    assert record.pid
    assert not record.ready
    assert _until(lambda: not _running(record.pid)), "the server outlived the interrupt"


# docker -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_image() -> str:
    return require_local_images("redis")["PYTEST_COMMONS_REDIS_IMAGE"]


def _inspect(cid: str) -> dict | None:
    result = subprocess.run(
        ["docker", "inspect", cid], capture_output=True, text=True, timeout=30, check=False
    )
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def _status(cid: str) -> str | None:
    data = _inspect(cid)
    return data["State"]["Status"] if data else None


def test_docker_pause_resume_stop_restart_and_logs(redis_image: str, ctx: RunContext) -> None:
    settings = _settings(redis_image=redis_image)
    spec = RedisSpec(settings)
    backend = DockerBackend(settings)
    inst = backend.start(spec, ctx)
    cid = inst.container_id
    try:
        assert inst.ready
        assert inst.version
        info = spec.info_from_dict(inst.info)

        backend.pause(inst)
        assert _status(cid) == "paused"
        backend.resume(inst)
        assert _status(cid) == "running"
        assert "Ready to accept connections" in backend.logs(inst)

        backend.stop_only(inst)
        assert _status(cid) == "exited"
        assert backend.restart(spec, inst, ctx) is inst
        assert _status(cid) == "running"
        assert spec.probe(info, timeout=5) == inst.version  # the same host port again
    finally:
        backend.stop(inst)
    assert _status(cid) is None
    assert backend.logs(inst) == ""  # a removed container has no log, and no error either


class RedisWithSecondPort(RedisSpec):
    def docker_launch(self, image: str) -> DockerLaunch:
        launch = super().docker_launch(image)
        launch.extra["extra_ports"] = [16379]
        return launch


def test_docker_extra_ports_are_published_on_loopback_and_recorded(
    redis_image: str, ctx: RunContext
) -> None:
    settings = _settings(redis_image=redis_image)
    backend = DockerBackend(settings)
    inst = backend.start(RedisWithSecondPort(settings), ctx)
    try:
        ports = inst.extra["ports"]
        assert set(ports) == {"16379"}
        assert ports["16379"] != inst.info["port"]
        data = _inspect(inst.container_id)
        assert data is not None
        assert data["NetworkSettings"]["Ports"]["16379/tcp"] == [
            {"HostIp": "127.0.0.1", "HostPort": str(ports["16379"])}
        ]
        record = ctx.read("redis")
        assert record is not None
        assert record.extra["ports"] == ports
    finally:
        backend.stop(inst)


def test_docker_start_of_an_unobtainable_image_fails_and_leaves_nothing(
    redis_image: str, ctx: RunContext
) -> None:
    image = "127.0.0.1:1/commons/absent:1"  # a registry on loopback that does not exist
    backend = DockerBackend(_settings(redis_image=image))
    with pytest.raises(ServiceStartError) as excinfo:
        backend.start(RedisSpec(_settings()), ctx)
    assert excinfo.value.what.startswith(f"could not start {image}: ")
    assert excinfo.value.remedy == "check `docker ps -a` and the Docker engine log"
    assert ctx.read("redis") is None  # no container: nothing recorded
    assert run_containers(ctx.run_id) == []


class ExitingRedis(RedisSpec):
    def docker_launch(self, image: str) -> DockerLaunch:
        launch = super().docker_launch(image)
        launch.command = ["sh", "-c", "echo commons-giving-up; exit 3"]
        return launch


def test_docker_container_exiting_during_start_is_reported_and_removed(
    redis_image: str, ctx: RunContext
) -> None:
    settings = _settings(redis_image=redis_image)
    with pytest.raises(ServiceStartError) as excinfo:
        DockerBackend(settings).start(ExitingRedis(settings), ctx)
    err = excinfo.value
    assert err.what == "the server container exited with code 3 during start"
    assert "commons-giving-up" in err.log_tail
    record = ctx.read("redis")
    assert record is not None
    assert record.container_id
    assert _status(record.container_id) is None
    assert run_containers(ctx.run_id) == []


class VanishingRedis(RedisSpec):
    """Someone removes the container while it starts (``docker rm -f``, a cleanup script)."""

    run_id = ""

    def probe(self, info: RedisInfo, timeout: float) -> str:
        sweep_run_containers(self.run_id)
        raise ProbeRefused("the container was removed under us")


def test_docker_container_removed_during_start_is_reported_without_a_log(
    redis_image: str, ctx: RunContext
) -> None:
    settings = _settings(redis_image=redis_image)
    spec = VanishingRedis(settings)
    spec.run_id = ctx.run_id
    with pytest.raises(ServiceStartError) as excinfo:
        DockerBackend(settings).start(spec, ctx)
    err = excinfo.value
    assert err.what == "the container was removed under us"
    assert err.log_tail == ""  # the log went with the container; no error about that
    assert "last lines" not in str(err)
    assert run_containers(ctx.run_id) == []
