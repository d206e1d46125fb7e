"""The Kafka service in inner pytest runs: marker, missing binary, broken binary, xdist sharing,
the external backend, no broker left behind; plus bootstrap-server parsing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_commons.core.host import free_port
from pytest_commons.plugin.settings import Settings
from pytest_commons.services.kafka import dist as kafka_dist
from pytest_commons.services.kafka.spec import APACHE_SOFTWARE, KafkaSpec, kafka_metadata

ENGINE_VERSION = {"tansu": "tansu 0.6.0", "apache": APACHE_SOFTWARE}


#: the real cache (pytester points HOME elsewhere, and the inner runs with it)
REAL_CACHE = Settings.from_env().cache_dir()


def apache_kafka_missing() -> str | None:
    """Why Apache Kafka cannot run here (None when it can)."""
    return KafkaSpec(Settings({"commons_cache_dir": str(REAL_CACHE)}.get)).apache_unavailable()


def use_engine(env: pytest.MonkeyPatch, engine: str) -> None:
    """Point inner runs at ``engine`` (Apache Kafka: from the real cache; CI: it must run)."""
    if engine == "apache":
        missing = apache_kafka_missing()
        if missing:
            message = f"Apache Kafka cannot run here: {missing} (pytest-commons fetch kafka)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        env.setenv("PYTEST_COMMONS_COMMONS_CACHE_DIR", str(REAL_CACHE))
    env.setenv("PYTEST_COMMONS_KAFKA_ENGINE", engine)


@pytest.fixture(params=["tansu", "apache"])
def engine(request: pytest.FixtureRequest, clean_env: pytest.MonkeyPatch) -> str:
    """Each local Kafka engine, set for the inner runs."""
    use_engine(clean_env, str(request.param))
    return str(request.param)


KAFKA_TEST = """
def test_kafka(kafka):
    topic = kafka.topic()
    kafka.produce(topic, ["hello"])
    assert [m.value() for m in kafka.consume(topic, 1, group=False)] == [b"hello"]
"""

RECORD_TESTS = """
import json, os, pytest

@pytest.mark.parametrize("n", range(6))
def test_record(kafka, kafka_service, n):
    topic = kafka.topic("fixed")
    kafka.produce(topic, [str(n)])
    assert [m.value() for m in kafka.consume(topic, 1, group=False)] == [str(n).encode()]
    out = os.environ["KAFKA_RECORD_DIR"]
    with open(os.path.join(out, f"{n}.json"), "w") as fh:
        json.dump({"servers": kafka.bootstrap_servers, "topic": topic,
                   "worker": os.environ.get("PYTEST_XDIST_WORKER", "master"),
                   "backend": kafka_service.backend, "version": kafka_service.version,
                   "pid": kafka_service.instance.pid}, fh)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _wait_dead(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(path.glob("*.json"))]


@pytest.fixture
def tansu_broker() -> Iterator[str]:
    """A Tansu broker started by this test (not by the plugin): its bootstrap address."""
    path, why = KafkaSpec().tansu_binary()
    if path is None:
        pytest.skip(why)
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [path, "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                kafka_metadata("127.0.0.1", port, timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("the test's own tansu broker did not start")
                time.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def test_marker_is_added_and_registered(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(KAFKA_TEST + "\ndef test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-m", "not kafka", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_plain*"])
    result.stdout.no_fnmatch_line("*test_kafka*")
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.kafka:*"])


def test_an_explicit_tansu_path_that_is_not_there_is_a_usage_error_not_a_skip(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_KAFKA_TANSU_PATH", "/nonexistent")
    clean_env.setenv("PYTEST_COMMONS_KAFKA_ENGINE", "tansu")
    pytester.makepyfile(KAFKA_TEST)
    result = pytester.runpytest_subprocess("--kafka-backend=local", "-rs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*kafka_tansu_path='/nonexistent' (from $PYTEST_COMMONS_KAFKA_TANSU_PATH) does not exist*"]
    )


def test_broker_that_dies_at_start_fails_with_its_log(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'tansu: storage engine exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    clean_env.setenv("PYTEST_COMMONS_KAFKA_TANSU_PATH", str(fake))
    clean_env.setenv("PYTEST_COMMONS_KAFKA_ENGINE", "tansu")
    pytester.makepyfile(KAFKA_TEST)
    result = pytester.runpytest_subprocess("--kafka-backend=local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*kafka (local backend): the server exited with code 3 during start*",
            "*| tansu: storage engine exploded*",
        ]
    )


def test_xdist_workers_share_one_broker_with_their_own_names(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path, engine: str
) -> None:
    pytest.importorskip("xdist")
    out = tmp_path / "records"
    out.mkdir()
    clean_env.setenv("KAFKA_RECORD_DIR", str(out))
    pytester.makepyfile(RECORD_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "--kafka-backend=local")
    result.assert_outcomes(passed=6)
    records = _records(out)
    assert len(records) == 6
    assert len({r["servers"] for r in records}) == 1, "one broker for the run"
    assert len({r["pid"] for r in records}) == 1
    assert {r["version"] for r in records} == {ENGINE_VERSION[engine]}
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    topics = [str(r["topic"]) for r in records]
    assert len(set(topics)) == 6
    for record in records:
        assert f"-{record['worker']}-" in str(record["topic"])
    assert _wait_dead(int(str(records[0]["pid"]))), "the broker outlived the run"


FIXED_NAME_TEST = """
import os, time

def test_fixed_topic_name(kafka, kafka_service):
    from confluent_kafka.admin import NewTopic

    me = os.environ["PYTEST_XDIST_WORKER"]
    barrier = os.environ["BARRIER_DIR"]
    try:  # the application's own topic, under a name it chose
        kafka.admin().create_topics([NewTopic("orders", 1)])["orders"].result(10)
        kafka.produce("orders", [me])
    finally:
        with open(os.path.join(barrier, me), "w") as fh:
            inst = kafka_service.instance
            fh.write(f"{kafka.bootstrap_servers} {inst.pid or inst.container_id}")
    deadline = time.monotonic() + 60
    while len(os.listdir(barrier)) < 2:  # both workers have written before either reads
        assert time.monotonic() < deadline, "the other worker never reached its test"
        time.sleep(0.01)
    assert [m.value() for m in kafka.consume("orders", 1, group=False)] == [me.encode()]
"""


@pytest.mark.parametrize("isolation", ["topic", "broker"])
def test_kafka_isolation_broker_keeps_fixed_names_apart_across_workers(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, barrier: Path, isolation: str
) -> None:
    """Both workers create the topic ``orders`` at the same time: on one broker (``topic``)
    they meet (one create fails), with ``kafka_isolation=broker`` each has its own."""
    pytest.importorskip("xdist")
    use_engine(clean_env, "tansu")
    pytester.makeini(f"[pytest]\nkafka_isolation = {isolation}\n")
    pytester.makepyfile(FIXED_NAME_TEST)
    # the same command line twice (not runpytest_subprocess: its --basetemp differs per run)
    argv = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "each")
    result = pytester.run(*argv, "--kafka-backend=local")
    seen = {p.name: p.read_text().split() for p in barrier.iterdir()}
    assert set(seen) == {"gw0", "gw1"}
    if isolation == "topic":
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*TOPIC_ALREADY_EXISTS*"])
        assert seen["gw0"] == seen["gw1"], "one broker for the run"
        return
    for run in range(2):  # the second run: the controller has a hint that kafka was needed
        if run:
            for path in barrier.iterdir():
                path.unlink()
            result = pytester.run(*argv, "--kafka-backend=local")
            seen = {p.name: p.read_text().split() for p in barrier.iterdir()}
        result.assert_outcomes(passed=2)
        assert seen["gw0"][0] != seen["gw1"][0], "each worker has a broker of its own"
        result.stdout.fnmatch_lines(
            ["*commons services*", "kafka@gw0 *local*", "kafka@gw1 *local*"]
        )
        shared = [line for line in result.outlines if line.startswith("kafka ")]
        assert not shared, "the controller started a shared broker nobody uses"
        for _, pid in seen.values():
            assert _wait_dead(int(pid)), "a worker's broker outlived the run"


def test_kafka_isolation_broker_on_apache_kafka(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, barrier: Path
) -> None:
    """The same promise with two JVM brokers (their data directories must not meet)."""
    pytest.importorskip("xdist")
    use_engine(clean_env, "apache")
    pytester.makepyfile(FIXED_NAME_TEST)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "each", "--kafka-backend=local", "--kafka-isolation=broker"
    )
    result.assert_outcomes(passed=2)
    seen = {p.name: p.read_text().split() for p in barrier.iterdir()}
    assert seen["gw0"][0] != seen["gw1"][0]
    for _, pid in seen.values():
        assert _wait_dead(int(pid), 30), "a worker's broker outlived the run"


def test_kafka_isolation_broker_on_docker_labels_a_container_per_worker(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, barrier: Path
) -> None:
    pytest.importorskip("xdist")
    from tests.integration.test_docker_backend import docker_images_present

    image = "pytest-commons/kafka:4.1.1"
    problem = docker_images_present([image])
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    clean_env.setenv("PYTEST_COMMONS_KAFKA_IMAGE", image)
    pytester.makeconftest(
        """
        import json, os, subprocess

        def pytest_sessionfinish(session):
            worker = os.environ.get("PYTEST_XDIST_WORKER")
            if worker:
                out = subprocess.run(
                    ["docker", "ps", "--format", "{{.ID}} {{.Labels}}"],
                    capture_output=True, text=True, check=True,
                ).stdout
                with open(os.path.join(os.environ["BARRIER_DIR"], worker + ".ps"), "w") as fh:
                    fh.write(out)
        """
    )
    pytester.makepyfile(FIXED_NAME_TEST)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "each", "--kafka-backend=docker", "--kafka-isolation=broker"
    )
    result.assert_outcomes(passed=2)
    seen = {p.name: p.read_text().split() for p in barrier.iterdir() if "." not in p.name}
    assert seen["gw0"][0] != seen["gw1"][0]
    listing = (barrier / "gw0.ps").read_text()
    for worker, (_, cid) in seen.items():
        line = next(row for row in listing.splitlines() if cid.startswith(row.split()[0]))
        assert f"pytest-commons.service=kafka@{worker}" in line
        left = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"id={cid}"], capture_output=True, text=True
        ).stdout.strip()
        assert left == "", f"{worker}'s container outlived the run"


def test_kafka_isolation_broker_on_an_external_broker_says_workers_share_it(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tansu_broker: str
) -> None:
    pytest.importorskip("xdist")
    clean_env.setenv("PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS", tansu_broker)
    clean_env.setenv("PYTEST_COMMONS_KAFKA_ISOLATION", "broker")
    pytester.makepyfile(KAFKA_TEST)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2)
    lines = [line for line in result.errlines if "cannot give each worker" in line]
    assert lines == [
        "commons: kafka: kafka_isolation='broker' (from $PYTEST_COMMONS_KAFKA_ISOLATION) cannot "
        f"give each worker a broker of its own on the external broker {tansu_broker}: the "
        "workers share it, so topic names the application chooses may meet across workers"
    ]


def test_external_backend_uses_the_given_broker(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path, tansu_broker: str
) -> None:
    out = tmp_path / "records"
    out.mkdir()
    clean_env.setenv("KAFKA_RECORD_DIR", str(out))
    clean_env.setenv("PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS", f"kafka://{tansu_broker}")
    pytester.makepyfile(RECORD_TESTS)
    result = pytester.runpytest_subprocess("-k", "0 or 1")
    result.assert_outcomes(passed=2)
    records = _records(out)
    assert {r["servers"] for r in records} == {tansu_broker}
    assert {r["backend"] for r in records} == {"external"}
    assert {r["version"] for r in records} == {"tansu (kafka-protocol)"}
    # the plugin deleted its topics on the broker it does not own
    host, port = tansu_broker.split(":")
    from confluent_kafka.admin import AdminClient

    left = AdminClient({"bootstrap.servers": tansu_broker}).list_topics(timeout=10).topics
    assert not {str(r["topic"]) for r in records} & set(left)
    assert kafka_metadata(host, int(port), timeout=2).brokers, "the broker is still running"


def test_malformed_external_servers_fail_clearly(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS", "http://127.0.0.1:9092")
    pytester.makepyfile(KAFKA_TEST)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*(from $PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS) is malformed*scheme must be kafka://*"]
    )


def test_kill_9_of_pytest_leaves_no_broker(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path, engine: str
) -> None:
    pid_file = tmp_path / "broker.pid"
    pytester.makepyfile(
        f"""
        import time
        def test_hang(kafka_service):
            open({str(pid_file)!r}, "w").write(str(kafka_service.instance.pid))
            time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kafka-backend=local"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline, "the inner run never reached its test"
            assert proc.poll() is None, "the inner run ended early"
            time.sleep(0.05)
        broker = int(pid_file.read_text())
        assert _alive(broker)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _wait_dead(broker, 20), f"the reaper left the {engine} broker running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- bootstrap servers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "servers", "host", "port"),
    [
        ("127.0.0.1:9092", "127.0.0.1:9092", "127.0.0.1", 9092),
        ("localhost", "localhost:9092", "localhost", 9092),
        ("kafka://127.0.0.1:19092", "127.0.0.1:19092", "127.0.0.1", 19092),
        ("a:1, b:2", "a:1,b:2", "a", 1),
        ("kafka://[::1]:9093,localhost:9094", "[::1]:9093,localhost:9094", "::1", 9093),
    ],
)
def test_parse_bootstrap_servers(url: str, servers: str, host: str, port: int) -> None:
    info = KafkaSpec().parse_url(url)
    assert (info.bootstrap_servers, info.host, info.port) == (servers, host, port)
    assert info.url == f"kafka://{servers}"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "no bootstrap servers"),
        ("http://h:1", "scheme must be kafka://"),
        ("kafka://user:pw@h:1", "credentials"),
        ("h:port", "bad port"),
        ("h:70000", "bad port"),
        ("::1:9092", "brackets"),
        ("kafka://h:1/topic", "no path"),
    ],
)
def test_parse_rejects(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        KafkaSpec().parse_url(url)


def test_probe_refuses_a_non_kafka_server(tmp_path: Path) -> None:
    """Something that answers but not in the Kafka protocol ends the wait at once."""
    import socket
    import threading

    from pytest_commons.errors import ProbeRefused

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ProbeRefused, match="not as a Kafka broker"):
            KafkaSpec().probe(KafkaSpec().parse_url(f"127.0.0.1:{port}"), timeout=2)
    finally:
        thread.join(5)
        server.close()


# --- engines and @pytest.mark.requires -----------------------------------------------------------

REQUIRES_TESTS = """
import pytest
from pytest_commons.services.kafka.client import kafka_requires

@pytest.mark.requires(kafka="transactions")
def test_needs_transactions(kafka):
    assert kafka.supports("transactions")

@kafka_requires("create_partitions", "high_watermark")
class TestNeeds:
    def test_in_class(self, kafka):
        assert kafka.supports("create_partitions")

def test_plain(kafka):
    assert kafka.flavour in ("tansu", "kafka")
"""


def test_requires_skips_on_tansu_naming_the_engine_and_the_remedy(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_KAFKA_ENGINE", "tansu")
    pytester.makepyfile(REQUIRES_TESTS)
    result = pytester.runpytest_subprocess("--kafka-backend=local", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*kafka: transactions: Tansu 0.6 does not honour read_committed after an abort*"
            "Apache Kafka does: `--kafka-engine=apache`*",
            "*kafka: create_partitions: Tansu 0.6 does not support CreatePartitions*",
        ]
    )


def test_requires_fails_under_services_missing_fail(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_KAFKA_ENGINE", "tansu")
    pytester.makepyfile(REQUIRES_TESTS)
    result = pytester.runpytest_subprocess("--kafka-backend=local", "--services-missing=fail")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        ["*kafka: transactions: Tansu*", "*failing because --services-missing=fail*"]
    )


def test_requires_runs_on_apache_kafka(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    use_engine(clean_env, "apache")
    pytester.makepyfile(REQUIRES_TESTS)
    result = pytester.runpytest_subprocess("--kafka-backend=local", "--services-missing=fail")
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("marker", "problem"),
    [
        ('requires(kafka="no_such_feature")', "requires(kafka='no_such_feature'): unknown feature"),
        ('requires(redis="cluster")', "redis features: none registered"),
        ('requires("kafka")', "takes keyword arguments only"),
    ],
)
def test_requires_rejects_what_it_does_not_know(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, marker: str, problem: str
) -> None:
    """A marker that names no known feature is a usage error at collection (exit 4)."""
    pytester.makepyfile(f"import pytest\n@pytest.mark.{marker}\ndef test_x():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert problem in result.stderr.str()


def test_apache_engine_without_the_jars_names_the_fetch_step(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("PYTEST_COMMONS_COMMONS_CACHE_DIR", str(tmp_path / "empty-cache"))
    clean_env.setenv("PYTEST_COMMONS_KAFKA_ENGINE", "apache")
    pytester.makepyfile(KAFKA_TEST)
    result = pytester.runpytest_subprocess("--kafka-backend=local", "-rs")
    result.assert_outcomes(skipped=1)
    text = result.stdout.str()
    assert f"Apache Kafka {kafka_dist.KAFKA_VERSION} is not in the cache" in text
    assert "pytest-commons fetch kafka" in text


def test_auto_without_java_serves_tansu(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "no-java-bin"
    empty.mkdir()
    clean_env.setenv("PATH", str(empty))
    clean_env.delenv("JAVA_HOME", raising=False)
    pytester.makepyfile(
        "def test_engine(kafka_service):\n"
        "    assert kafka_service.version.startswith('tansu'), kafka_service.version\n"
    )
    result = pytester.runpytest_subprocess("--kafka-backend=local")
    result.assert_outcomes(passed=1)


def test_java_version_is_read_and_checked(tmp_path: Path) -> None:
    for text, major in (('JAVA_VERSION="17.0.15"', 17), ('JAVA_VERSION="1.8.0_402"', 8)):
        home = tmp_path / str(major)
        (home / "bin").mkdir(parents=True)
        java = home / "bin" / "java"
        java.write_text("#!/bin/sh\nexit 1\n")
        java.chmod(0o755)
        (home / "release").write_text(text + "\n")
        assert kafka_dist.java_major(str(java)) == major


FIXED_NAME_TESTS = """
from confluent_kafka.admin import NewTopic

def _use(kafka, value):
    admin = kafka.admin()
    if "orders" not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic("orders", 1, 1)])["orders"].result(10)
    kafka.produce("orders", [value])
    return [m.value() for m in kafka.consume("orders", 1, group=False)]

def test_first(kafka):
    assert _use(kafka, "first") == [b"first"]

def test_second(kafka):
    assert _use(kafka, "second") == [b"second"], "the previous test's record is still there"
"""


def test_a_fixed_topic_name_starts_empty_in_every_test(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, engine: str
) -> None:
    pytester.makepyfile(FIXED_NAME_TESTS)
    result = pytester.runpytest_subprocess("--kafka-backend=local", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


OPEN_AIO_CLIENTS = """
import pytest

LEFT = []

@pytest.mark.asyncio
async def test_leaves_its_clients_open(kafka):
    topic = kafka.topic()
    LEFT.append(await kafka.aio_producer())
    LEFT.append(await kafka.aio_consumer(topic))

def test_they_were_stopped_on_a_live_loop():
    assert len(LEFT) == 2
    assert all(client._closed for client in LEFT)
    networks = [getattr(client, "_client", None) or client.client for client in LEFT]
    still_open = [conn for net in networks for conn in net._conns.values() if conn.connected()]
    assert still_open == []
"""


def test_aiokafka_clients_left_open_are_stopped_before_the_loop_closes(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """On Apache Kafka a consumer stopped after pytest-asyncio cancelled the loop's tasks waited
    for a LeaveGroup answer nobody read; its stop was cut short and its sockets leaked (an
    unraisable ResourceWarning in a later test, about one run in two)."""
    use_engine(clean_env, "apache")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(OPEN_AIO_CLIENTS)
    result = pytester.runpytest_subprocess(
        "--kafka-backend=local", "-p", "no:randomly", "-W", "error"
    )
    result.assert_outcomes(passed=2)


FROZEN_BROKER = """
import pytest

LEFT = []

@pytest.fixture
def frozen(kafka_service):
    yield
    kafka_service.resume()

@pytest.mark.asyncio
async def test_the_broker_freezes_with_a_consumer_open(kafka, frozen, kafka_service):
    topic = kafka.topic()
    consumer = await kafka.aio_consumer(topic)
    await consumer.getmany(timeout_ms=200)
    LEFT.append(consumer)
    kafka_service.pause()

def test_its_connections_were_closed_anyway():
    network = LEFT[0]._client
    assert network._conns, "the consumer had connections"
    assert [conn for conn in network._conns.values() if conn.connected()] == []
"""


def test_an_aiokafka_stop_that_hangs_still_closes_the_clients_connections(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """A stop whose LeaveGroup is never answered (here: the broker is frozen) is cut short after
    a few seconds; the client's connections are closed all the same."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(FROZEN_BROKER)
    result = pytester.runpytest_subprocess(
        "--kafka-backend=local", "-p", "no:randomly", "-W", "error"
    )
    result.assert_outcomes(passed=2)
