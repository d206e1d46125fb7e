"""The backends' building blocks without a real server: the readiness wait, backend lookup, the
local backend's helpers (server user, chown, caches, binaries) and the docker backend's checks
against a stand-in engine on a unix socket (the Docker SDK speaks to it as to dockerd)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from pytest_commons.backends.base import BACKENDS, get_backend, wait_ready
from pytest_commons.backends.local import LocalBackend
from pytest_commons.core.host import (
    cached_build,
    chown_tree,
    copy_datadir,
    make_spare,
    server_user,
    spare_path,
    take_spare,
    which_any,
)
from pytest_commons.core.lock import FileLock
from pytest_commons.core.run import Instance
from pytest_commons.errors import BackendUnavailable, NotReady, ServiceStartError
from pytest_commons.plugin.settings import Settings
from pytest_commons.services.base import ConnectionInfo, ServiceSpec
from pytest_commons.services.redis.spec import RedisSpec

ROOT = Path(__file__).resolve().parents[2]
NOBODY = (65534, 65534)


def _as_nobody(call: Callable[[], object]) -> object:
    """``call()`` in a forked child whose effective uid is nobody's; returns its result (or
    raises what it raised). setuid calls are process-wide: doing it in the test process would
    also change the uid of the plugin's threads starting servers beside the test."""
    import pickle

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.seteuid(NOBODY[0])
            try:
                outcome: tuple[bool, object] = (True, call())
            except BaseException as exc:
                outcome = (False, exc)
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(outcome, out)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as got:
        data = got.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)
    if not ok:
        raise value  # type: ignore[misc]
    return value


def _settings(**values: str) -> Settings:
    return Settings(values.get)


class ToySpec(ServiceSpec[ConnectionInfo]):
    """A service whose probe plays back ``answers``: a version, or an exception to raise."""

    name = "toy"
    info_type = ConnectionInfo

    def __init__(self, *answers: str | BaseException) -> None:
        super().__init__(_settings())
        self.answers = list(answers)
        self.calls = 0

    def parse_url(self, url: str) -> ConnectionInfo:
        raise ValueError("toy services have no URL")

    def probe(self, info: ConnectionInfo, timeout: float) -> str:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


INFO = ConnectionInfo(host="127.0.0.1", port=1)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for unix sockets (AF_UNIX paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="pc-sock-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# base: the readiness wait and backend lookup -----------------------------------------------------


def test_wait_ready_reports_an_unexpected_probe_error_with_its_cause() -> None:
    boom = OSError("driver exploded")
    spec = ToySpec(boom)
    with pytest.raises(ServiceStartError) as excinfo:
        wait_ready(
            spec, "local", INFO, 5.0, log_tail=lambda: "line one\nline two", log_path="x.log"
        )
    err = excinfo.value
    assert err.what == "the readiness probe failed unexpectedly: OSError: driver exploded"
    assert err.__cause__ is boom
    assert "last lines of x.log:" in str(err)
    assert "| line two" in str(err)
    assert spec.calls == 1  # no retry: an unknown error is not "not ready yet"


def test_wait_ready_retries_not_ready_then_returns_the_version() -> None:
    spec = ToySpec(NotReady("booting"), NotReady("still booting"), "7.2.4")
    assert wait_ready(spec, "local", INFO, 5.0) == "7.2.4"
    assert spec.calls == 3


def test_wait_ready_times_out_quoting_the_last_probe() -> None:
    spec = ToySpec(NotReady("connection refused"))
    with pytest.raises(ServiceStartError) as excinfo:
        wait_ready(spec, "docker", INFO, 0.05)
    assert "not ready after 0.05 s (last probe: connection refused)" in str(excinfo.value)
    assert excinfo.value.remedy.startswith("raise --service-start-timeout")


def test_get_backend_without_the_backend_module_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(BACKENDS, "ghost", "pytest_commons.backends.ghost:GhostBackend")
    with pytest.raises(BackendUnavailable) as excinfo:
        get_backend("ghost", _settings())
    assert str(excinfo.value) == "the ghost backend is not part of this installation"
    assert isinstance(excinfo.value.__cause__, ModuleNotFoundError)


def test_get_backend_does_not_hide_a_missing_dependency_of_the_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the module exists but imports something absent: that is a real error, not "not installed"
    (tmp_path / "commons_broken_backend.py").write_text("import commons_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(BACKENDS, "broken", "commons_broken_backend:Broken")
    with pytest.raises(ModuleNotFoundError) as excinfo:
        get_backend("broken", _settings())
    assert excinfo.value.name == "commons_absent_dependency"


def test_get_backend_builds_the_named_backend_with_the_settings() -> None:
    settings = _settings(service_start_timeout="7")
    backend = get_backend("local", settings)
    assert isinstance(backend, LocalBackend)
    assert backend.config is settings.run_config()
    assert backend.config.start_timeout == 7.0


def test_logs_read_the_log_file_and_are_empty_without_one(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_bytes(b"started\n\xff done\n")
    backend = LocalBackend(_settings())
    assert backend.logs(Instance("redis", "local", log_path=str(log))) == "started\n\ufffd done\n"
    assert backend.logs(Instance("redis", "local", log_path=str(tmp_path / "gone.log"))) == ""
    assert backend.logs(Instance("redis", "local")) == ""


# local: server user, chown, caches, binaries ---------------------------------------------------


def test_server_user_is_none_when_not_root() -> None:
    if os.geteuid() != 0:
        assert server_user("nobody") is None
        return
    found = _as_nobody(lambda: server_user("no-such-user-commons"))
    assert found is None  # not root: servers run as us, the preference is not even looked up


@pytest.mark.skipif(os.geteuid() != 0, reason="server users are chosen only when running as root")
def test_server_user_as_root_prefers_the_named_user_and_rejects_an_unknown_one() -> None:
    assert server_user("nobody") == NOBODY
    with pytest.raises(BackendUnavailable) as excinfo:
        server_user("no-such-user-commons")
    assert "'no-such-user-commons' does not exist" in excinfo.value.reason
    assert "--commons-server-user" in excinfo.value.remedy


def _server_user_with_passwd(tmp_path: Path, drop: set[str]) -> subprocess.CompletedProcess[str]:
    """server_user() in a child that sees /etc/passwd without the users in ``drop`` (a private
    mount namespace: the machine's /etc/passwd is untouched)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private /etc/passwd")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode:
        pytest.skip("unshare -m is not permitted here (no CAP_SYS_ADMIN)")
    lines = Path("/etc/passwd").read_text().splitlines(keepends=True)
    passwd = tmp_path / "passwd"
    passwd.write_text("".join(ln for ln in lines if ln.split(":", 1)[0] not in drop))
    # only the file: NSS modules such as systemd's synthesize "nobody" on their own
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("passwd: files\ngroup: files\n")
    script = textwrap.dedent("""
        from pytest_commons.core.host import server_user
        from pytest_commons.errors import BackendUnavailable
        try:
            print("user", server_user(None))
        except BackendUnavailable as exc:
            print("unavailable", exc)
    """)
    return subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/nsswitch.conf '
            '&& exec "$3" -c "$4"',
            "sh",
            str(passwd),
            str(nsswitch),
            sys.executable,
            script,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_server_user_falls_back_to_nobody_without_a_postgres_user(tmp_path: Path) -> None:
    result = _server_user_with_passwd(tmp_path, {"postgres"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"user {NOBODY}"


def test_server_user_without_any_unprivileged_user_is_unavailable(tmp_path: Path) -> None:
    result = _server_user_with_passwd(tmp_path, {"postgres", "nobody"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "unavailable running as root and no unprivileged user (postgres, nobody) exists "
        "(set --commons-server-user)"
    )


def _tree(tmp_path: Path) -> Path:
    top = tmp_path / "data"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "file").write_text("x")
    (top / "dangling").symlink_to(tmp_path / "nowhere")
    return top


def test_chown_tree_without_a_server_user_changes_nothing(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    before = {p: p.lstat().st_uid for p in [top, *top.rglob("*")]}
    chown_tree(top, None)
    assert {p: p.lstat().st_uid for p in [top, *top.rglob("*")]} == before


def test_chown_tree_gives_the_whole_tree_to_the_server_user(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    owner = NOBODY if os.geteuid() == 0 else (os.getuid(), os.getgid())
    chown_tree(top, owner)
    for path in [top, *top.rglob("*")]:
        st = path.lstat()  # the symlink itself, not its (absent) target
        assert (st.st_uid, st.st_gid) == owner, path


def test_cached_build_builds_once_then_reuses(tmp_path: Path) -> None:
    cache = tmp_path / "caches" / "cluster"
    builds: list[Path] = []

    def build(work: Path) -> None:
        builds.append(work)
        work.mkdir()
        (work / "PG_VERSION").write_text("15\n")

    def ready(p: Path) -> bool:
        return (p / "PG_VERSION").is_file()

    assert cached_build(cache, ready, build) == cache
    assert cached_build(cache, ready, build) == cache
    assert len(builds) == 1
    assert (cache / "PG_VERSION").read_text() == "15\n"
    assert not builds[0].exists()  # the work directory is removed
    assert [p.name for p in cache.parent.iterdir() if ".tmp" in p.name] == []


def test_cached_build_uses_a_cache_another_process_finished_while_it_waited(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "caches" / "cluster"
    cache.parent.mkdir()
    checked = threading.Event()
    builds: list[Path] = []
    result: list[Path] = []

    def ready(p: Path) -> bool:
        found = p.is_dir()
        checked.set()
        return found

    worker = threading.Thread(
        target=lambda: result.append(cached_build(cache, ready, builds.append)), daemon=True
    )
    with FileLock(str(cache) + ".lock"):  # "another process" is building
        worker.start()
        assert checked.wait(10)  # the worker saw no cache and now waits for the lock
        time.sleep(0.05)
        cache.mkdir()  # the other builder finishes: its cache, then its manifest, last
        from pytest_commons.core.host import MANIFEST, _manifest

        (cache / MANIFEST).write_text(_manifest(cache))
    worker.join(10)
    assert result == [cache]
    assert builds == []  # found ready under the lock: not built a second time


def test_copy_datadir_without_a_server_user_keeps_our_ownership(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "base").mkdir(parents=True)
    (cache / "base" / "1").write_text("page")
    datadir = tmp_path / "data"
    datadir.mkdir(mode=0o755)
    copy_datadir(cache, datadir, None)
    assert (datadir / "base" / "1").read_text() == "page"
    st = datadir.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == os.getuid()


def test_a_spare_copy_is_renamed_into_the_next_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(tmp_path / "runtime"))
    (tmp_path / "runtime").mkdir()
    cache = tmp_path / "caches" / "postgres" / "key1"
    (cache / "base").mkdir(parents=True)
    (cache / "base" / "1").write_text("page")
    datadir = tmp_path / "run" / "data"
    datadir.mkdir(parents=True, mode=0o755)
    assert not take_spare(cache, datadir, None)  # none made yet: the caller copies
    make_spare(lambda: cache)
    spare = spare_path(cache)
    assert spare.parent == tmp_path / "runtime" / f"pytest-commons-{os.getuid()}" / "spares"
    assert (spare / "base" / "1").read_text() == "page"
    (spare / "marker").write_text("the first spare")
    make_spare(lambda: cache)  # one is there: kept, not copied again
    assert (spare / "marker").is_file()
    assert take_spare(cache, datadir, None)
    assert (datadir / "base" / "1").read_text() == "page"
    assert stat.S_IMODE(datadir.stat().st_mode) == 0o700
    assert not spare.exists()
    other = tmp_path / "run" / "data2"
    other.mkdir()
    assert not take_spare(cache, other, None)  # taken: the next start copies, or finds a new one
    assert [p.name for p in spare.parent.iterdir()] == []  # no temporary copy left behind
    # a spare of an older cache of the same service and a copy whose maker died: removed
    (spare.parent / "postgres-oldkey" / "base").mkdir(parents=True)
    (spare.parent / f"postgres-key1.tmp{2**22 + 1}").mkdir()  # beyond pid_max: no such process
    (spare.parent / f"postgres-key1.tmp{os.getpid()}x").mkdir()
    (spare.parent / "redis-key9").mkdir()  # another service's: not ours to touch
    make_spare(lambda: cache)
    assert sorted(p.name for p in spare.parent.iterdir()) == ["postgres-key1", "redis-key9"]


def test_a_spare_that_cannot_be_made_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_COMMONS_RUNTIME_DIR", str(tmp_path))

    def broken_cache() -> Path:
        raise ServiceStartError("postgres", "local", "initdb failed with code 1")

    make_spare(broken_cache)  # best effort: the next start meets the error itself
    missing = tmp_path / "caches" / "postgres" / "gone"
    make_spare(lambda: missing)  # cp fails: nothing to copy
    spares = tmp_path / f"pytest-commons-{os.getuid()}" / "spares"
    assert not spares.exists() or list(spares.iterdir()) == []


def test_which_any_searches_extra_dirs_for_an_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    plain, execs = tmp_path / "plain", tmp_path / "execs"
    plain.mkdir()
    execs.mkdir()
    (plain / "commons-db").write_text("not executable")
    (plain / "commons-db").chmod(0o644)
    (plain / "commons-db-alt").mkdir()  # a directory is not a binary
    binary = execs / "commons-db-alt"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    names = ["commons-db", "commons-db-alt"]
    assert which_any(names, [str(tmp_path / "missing"), str(plain), str(execs)]) == str(binary)
    assert which_any(names, [str(plain)]) is None
    monkeypatch.setenv("PATH", str(execs))
    assert which_any(names, []) == str(binary)  # PATH first


def test_fault_injection_on_an_instance_without_a_process_does_nothing() -> None:
    # recorded before its process exists: pid None must never become killpg(0, ...), which
    # would stop or kill our own process group
    inst = Instance("redis", "local", pid=None, extra={"graceful_signal": int(signal.SIGINT)})
    backend = LocalBackend(_settings())
    backend.pause(inst)
    backend.resume(inst)
    backend.stop_only(inst)
    assert inst.pid is None
    assert os.getpgid(0) == os.getpgrp()  # we are still here, unstopped


# docker: engine checks ------------------------------------------------------------------------


def test_a_non_unix_docker_host_is_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_commons.backends.docker import docker_engine_unreachable

    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert docker_engine_unreachable() is None  # no cheap check: the SDK reports it later


def test_a_socket_we_may_not_use_is_reported_as_a_permission_problem(
    monkeypatch: pytest.MonkeyPatch, socket_dir: Path
) -> None:
    from pytest_commons.backends.docker import docker_engine_unreachable

    path = socket_dir / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    socket_dir.chmod(0o755)
    path.chmod(0o600)  # like /var/run/docker.sock for someone outside the docker group
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    try:
        if os.geteuid() == 0:  # root may use any socket: check as nobody
            problem = _as_nobody(docker_engine_unreachable)
        else:
            problem = docker_engine_unreachable()
    finally:
        server.close()
    assert problem == (
        f"no permission to use the Docker engine's socket {path} (not in the docker group?)"
    )


class FakeEngine:
    """A stand-in Docker engine on a unix socket: the handful of API calls the docker backend
    makes, with scripted answers, and a record of the requests it got."""

    API: ClassVar[dict[str, str]] = {
        "ApiVersion": "1.43",
        "MinAPIVersion": "1.24",
        "Version": "24.0.0",
        "Os": "linux",
    }

    def __init__(self, path: Path) -> None:
        self.path = path
        self.version_ok = True
        self.image_answers: dict[str, list[int]] = {}  # GET /images/<name>/json, in turn
        self.containers: list[str] = []
        self.list_status = 200
        self.pull_status = 200
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "fake"

            def do_GET(self) -> None:
                engine.handle(self, "GET")

            def do_POST(self) -> None:
                engine.handle(self, "POST")

            def do_DELETE(self) -> None:
                engine.handle(self, "DELETE")

        self.server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        if length:
            req.rfile.read(length)
        parts = urlsplit(req.path)
        path = re.sub(r"^/v[\d.]+", "", unquote(parts.path))
        self.requests.append((method, path, parse_qs(parts.query)))
        status, body = self.route(method, path)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def route(self, method: str, path: str) -> tuple[int, Any]:
        if path == "/_ping":
            return 200, b"OK"
        if path == "/version":
            return (200, self.API) if self.version_ok else (500, {"message": "engine starting"})
        image = re.fullmatch(r"/images/(.+)/json", path)
        if image and method == "GET":
            answers = self.image_answers.get(image[1], [])
            status = answers.pop(0) if answers else 404
            if status == 200:
                return 200, {"Id": "sha256:" + "0" * 64, "RepoTags": [image[1]]}
            if status == 404:
                return 404, {"message": f"No such image: {image[1]}"}
            return status, {"message": "engine exploded"}
        if path == "/images/create" and method == "POST":
            if self.pull_status != 200:
                return self.pull_status, {"message": "no such host: registry-1.docker.io"}
            return 200, {"status": "Downloaded newer image"}
        if path == "/containers/json":
            if self.list_status != 200:
                return self.list_status, {"message": "engine exploded"}
            return 200, [{"Id": cid, "Names": [f"/{cid}"]} for cid in self.containers]
        inspect = re.fullmatch(r"/containers/(\w+)/json", path)
        if inspect:
            return 200, {"Id": inspect[1], "Name": f"/{inspect[1]}", "State": {}, "Config": {}}
        if re.fullmatch(r"/containers/\w+", path) and method == "DELETE":
            return 204, b""
        return 404, {"message": "page not found"}

    def calls(self, method: str, pattern: str) -> list[dict[str, list[str]]]:
        return [q for m, p, q in self.requests if m == method and re.fullmatch(pattern, p)]


@pytest.fixture
def fake_engine(socket_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEngine]:
    pytest.importorskip("docker")
    engine = FakeEngine(socket_dir / "engine.sock")
    engine.thread.start()
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.path}")
    yield engine
    engine.server.shutdown()
    engine.server.server_close()


def _docker_backend(image: str) -> Any:
    from pytest_commons.backends.docker import DockerBackend

    return DockerBackend(_settings(redis_image=image))


def test_an_engine_that_pings_but_does_not_serve_the_api_is_unavailable(
    fake_engine: FakeEngine,
) -> None:
    fake_engine.version_ok = False
    problem = _docker_backend("redis:7").unavailable(RedisSpec(_settings()))
    assert problem is not None
    assert problem.reason.startswith("the Docker engine does not answer: ")
    assert problem.remedy == "start Docker (dockerd), or set DOCKER_HOST"


def test_an_engine_error_inspecting_the_image_is_reported(fake_engine: FakeEngine) -> None:
    image = f"commons-fake/broken-{uuid.uuid4().hex[:8]}:1"
    fake_engine.image_answers[image] = [500]
    problem = _docker_backend(image).unavailable(RedisSpec(_settings()))
    assert problem is not None
    assert problem.reason.startswith(f"cannot inspect image {image}: ")
    assert "engine exploded" in problem.reason
    assert fake_engine.calls("POST", "/images/create") == []  # an error is not "absent": no pull


class Notices:
    """What the plugin says on the terminal's descriptor (``progress.notice``), read from a
    pipe put in its place (the notices never go to sys.stderr, which pytest captures)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from pytest_commons.plugin import progress as _progress

        self._read, self._write = os.pipe()
        monkeypatch.setattr(_progress, "_fd", self._write)

    def said(self) -> str:
        """Everything said so far (once: the pipe is closed)."""
        os.close(self._write)
        with os.fdopen(self._read) as pipe:
            return pipe.read()


def _pulling(fake_engine: FakeEngine, kind: str, answers: list[int]) -> tuple[str, Any, Any]:
    """A fresh image name with the engine's ``answers`` to its inspection, a docker backend
    configured with it, and a Redis spec."""
    image = f"commons-fake/{kind}-{uuid.uuid4().hex[:8]}:1"
    fake_engine.image_answers[image] = answers
    return image, _docker_backend(image), RedisSpec(_settings())


def test_an_image_is_pulled_once_per_process(
    fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    notices = Notices(monkeypatch)
    # absent; present after the pull; absent again (as if removed): the pull is not repeated
    image, backend, spec = _pulling(fake_engine, "pulled", [404, 200, 404])
    assert backend.unavailable(spec) is None
    assert backend.unavailable(spec) is None
    pulls = fake_engine.calls("POST", "/images/create")
    assert len(pulls) == 1
    assert pulls[0]["fromImage"] == [image.rsplit(":", 1)[0]]
    assert notices.said().count(f"commons: pulling image {image} for redis") == 1


def test_a_failed_pull_is_said_and_not_tried_again_by_the_process(
    fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    notices = Notices(monkeypatch)
    image, backend, spec = _pulling(fake_engine, "unpullable", [404, 404])
    fake_engine.pull_status = 500
    problems = [backend.unavailable(spec), backend.unavailable(spec)]
    assert all(
        p is not None
        and p.reason.startswith(f"image {image} is not present and cannot be pulled (")
        and "registry-1.docker.io" in p.reason
        for p in problems
    )
    assert len(fake_engine.calls("POST", "/images/create")) == 1
    said = notices.said()
    assert said.count(f"commons: pulling image {image} for redis") == 1
    assert said.count(f"commons: pulling image {image} failed: ") == 1


def test_removing_by_label_asks_the_engine_for_both_labels(fake_engine: FakeEngine) -> None:
    from pytest_commons.backends.docker import RUN_LABEL, SERVICE_LABEL

    fake_engine.containers = ["aaa111", "bbb222"]
    _docker_backend("redis:7")._remove_by_label("run42", "redis")
    (listing,) = fake_engine.calls("GET", "/containers/json")
    assert json.loads(listing["filters"][0]) == {
        "label": [f"{RUN_LABEL}=run42", f"{SERVICE_LABEL}=redis"]
    }
    removed = [p for m, p, _ in fake_engine.requests if m == "DELETE"]
    assert removed == ["/containers/aaa111", "/containers/bbb222"]
    assert all(
        q["force"] == ["True"] and q["v"] == ["True"]
        for q in fake_engine.calls("DELETE", r"/containers/\w+")
    )


def test_removing_by_label_swallows_engine_errors(fake_engine: FakeEngine) -> None:
    fake_engine.containers = ["aaa111"]
    fake_engine.list_status = 500
    _docker_backend("redis:7")._remove_by_label("run42", "redis")  # must not raise
    assert fake_engine.calls("GET", "/containers/json")  # it did ask
    assert fake_engine.calls("DELETE", r"/containers/\w+") == []


def _python(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _child_env(**extra: str) -> dict[str, str]:
    drop = ("TC_HOST", "TESTCONTAINERS_HOST_OVERRIDE", "TESTCONTAINERS_CONNECTION_MODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, **extra}


CONFIGURE = """
    from pytest_commons.backends.docker import _configure_testcontainers
    from testcontainers.core.config import testcontainers_config as config
    _configure_testcontainers()
    config.tc_host_override = "changed later"
    _configure_testcontainers()  # once per process: the later change stands
    print(config.tc_host_override, config.connection_mode_override, config.ryuk_disabled)
"""


def test_testcontainers_is_pointed_at_loopback_once(tmp_path: Path) -> None:
    pytest.importorskip("testcontainers.core.config")
    result = _python(CONFIGURE, _child_env(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["changed", "later", "ConnectionMode.docker_host", "True"]


def test_testcontainers_settings_from_the_environment_are_kept(tmp_path: Path) -> None:
    pytest.importorskip("testcontainers.core.config")
    script = CONFIGURE.replace('    config.tc_host_override = "changed later"\n', "")
    env = _child_env(TC_HOST="10.11.12.13", TESTCONTAINERS_CONNECTION_MODE="bridge_ip")
    result = _python(script, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10.11.12.13", "ConnectionMode.bridge_ip", "True"]


def test_without_testcontainers_the_backend_says_how_to_install_it(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    # an engine answers, but the testcontainers found first has no core (as when it is absent)
    shadow = tmp_path / "shadow"
    (shadow / "testcontainers").mkdir(parents=True)
    (shadow / "testcontainers" / "__init__.py").write_text("")
    env = _child_env(DOCKER_HOST=f"unix://{fake_engine.path}")
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), env["PYTHONPATH"]])
    result = _python(
        """
        from pytest_commons.plugin.settings import Settings
        from pytest_commons.backends.docker import DockerBackend
        from pytest_commons.services.redis.spec import RedisSpec
        settings = Settings(lambda key: None)
        print(DockerBackend(settings).unavailable(RedisSpec(settings)))
        """,
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        'testcontainers is not installed (pip install "pytest-commons[docker]")'
    )
    assert fake_engine.calls("GET", "/_ping")  # the engine check came first and passed


def test_a_local_server_another_process_started_is_told_gone_from_proc() -> None:
    """``LocalBackend.gone`` from a process that did not start the server (an xdist worker):
    it reads /proc, since it cannot wait for another process's child."""
    from pytest_commons.backends.local import _process_gone
    from pytest_commons.core.run import Instance, process_start_time

    proc = subprocess.Popen(["sleep", "600"])  # not adopted: as if another process's
    start = process_start_time(proc.pid) or ""
    inst = Instance(service="redis", backend="local", pid=proc.pid, start_time=start)
    assert _process_gone(inst) is None
    assert _process_gone(Instance(service="redis", backend="local")) is None  # no pid yet
    other = Instance(service="redis", backend="local", pid=proc.pid, start_time="1")
    assert _process_gone(other) == "is no longer running"  # the pid is another process now
    proc.kill()
    deadline = time.monotonic() + 30
    while _process_gone(inst) is None:  # a zombie until reaped: counted as gone
        assert time.monotonic() < deadline, "SIGKILL not delivered in 30 s"
        time.sleep(0.01)
    assert _process_gone(inst) == "is no longer running"
    proc.wait()
    assert _process_gone(inst) == "is no longer running"  # reaped: no /proc entry at all


def test_the_log_since_a_mark_on_a_local_log_file(tmp_path: Path) -> None:
    """What a failing test's report shows: the lines logged after the mark taken at its start."""
    from pytest_commons.backends.local import LocalBackend
    from pytest_commons.core.run import Instance

    backend = LocalBackend(_settings())
    log = tmp_path / "server.log"
    log.write_text("started\n")
    inst = Instance(service="redis", backend="local", log_path=str(log))
    mark = backend.log_mark(inst)
    assert mark == len("started\n")
    with log.open("a") as fh:
        fh.write("during the test\n")
    assert backend.logs_since(inst, mark) == "during the test\n"
    log.unlink()  # gone (its directory removed): nothing, no error
    assert backend.log_mark(inst) == 0.0
    assert backend.logs_since(inst, mark) == ""
    no_log = Instance(service="redis", backend="local")  # a server without a log file
    assert backend.log_mark(no_log) == 0.0
    assert backend.logs_since(no_log, 0.0) == ""


def test_the_log_since_a_mark_of_a_container_that_is_gone() -> None:
    from pytest_commons.backends.docker import DockerBackend
    from pytest_commons.core.run import Instance

    backend = DockerBackend(_settings())
    inst = Instance(service="redis", backend="docker", container_id="pc-no-such-container")
    mark = backend.log_mark(inst)
    assert mark == pytest.approx(time.time(), abs=60)
    assert backend.logs_since(inst, mark) == ""  # no such container (or no engine): nothing
