"""AWS (the LocalStack contract): connection info, readiness probe, local and Docker launch.

The local backend runs moto's own server through the launcher in
:mod:`pytest_commons.services.aws.moto` (``python -m pytest_commons.services.aws.moto``).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pytest_commons.errors import ConfigError, NotReady, ProbeRefused
from pytest_commons.services.aws import AwsConfig
from pytest_commons.services.base import ConnectionInfo, DockerLaunch, LocalLaunch, ServiceSpec

if TYPE_CHECKING:
    from collections.abc import Callable

LOCALSTACK_PORT = 4566
DEFAULT_KEY = "test"  # LocalStack's documented dummy credentials
EXT_PREFIX = "/_pytest_commons"
INSTALL_HINT = 'pip install "pytest-commons[aws]"'


@dataclass(frozen=True, repr=False)
class AwsInfo(ConnectionInfo):
    """Where an AWS-compatible endpoint listens and the (dummy) credentials it takes."""

    scheme: str = "http"
    region: str = "us-east-1"
    access_key_id: str = DEFAULT_KEY
    secret_access_key: str = DEFAULT_KEY
    path: str = ""

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` (what boto3's ``endpoint_url`` and ``$AWS_ENDPOINT_URL`` take)."""
        return f"{self.scheme}://{self.address}{self.path}"

    def with_credentials(self, access_key_id: str, secret_access_key: str) -> AwsInfo:
        return replace(self, access_key_id=access_key_id, secret_access_key=secret_access_key)

    def describe(self) -> str:
        return self.endpoint_url


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost`` (names are never resolved)."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(raw: str | None) -> set[str]:
    return {h.strip().lower() for h in (raw or "").split(",") if h.strip()}


def check_endpoint_host(host: str, allowed: str | None, backend: str = "external") -> None:
    """Refuse a non-loopback endpoint unless ``aws_allowed_hosts`` lists it (ConfigError)."""
    if is_loopback(host) or host.lower() in allowed_hosts(allowed):
        return
    raise ConfigError(
        "aws",
        backend,
        f"the endpoint host {host!r} is not loopback and not listed in aws_allowed_hosts; "
        "pytest-commons refuses it so that a test run can never touch a real AWS account",
        f"point PYTEST_COMMONS_AWS_ENDPOINT_URL (--aws-endpoint-url) at a LocalStack/moto on "
        f"127.0.0.1, or, if {host!r} is an emulator you trust, add it to "
        f"PYTEST_COMMONS_AWS_ALLOWED_HOSTS (--aws-allowed-hosts, ini aws_allowed_hosts)",
    )


def _http(method: str, url: str, timeout: float, data: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read() or b""


class AwsSpec(ServiceSpec[AwsInfo]):
    """AWS on moto (local), LocalStack (docker) or any AWS-compatible endpoint (external)."""

    config: AwsConfig

    name = "aws"
    info_type = AwsInfo
    install_hint = INSTALL_HINT

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        return self.config.region

    def check_driver(self) -> str | None:
        if importlib.util.find_spec("boto3") is None:
            return f"boto3 is not installed ({INSTALL_HINT})"
        return None

    # external -------------------------------------------------------------------------------
    def parse_url(self, url: str) -> AwsInfo:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"scheme must be http:// or https://, got {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else LOCALSTACK_PORT)
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        if parts.query or parts.fragment:
            raise ValueError("an endpoint URL takes no query or fragment")
        check_endpoint_host(parts.hostname, self.config.allowed_hosts)
        return AwsInfo(
            host=parts.hostname,
            port=port,
            scheme=parts.scheme,
            region=self.region,
            access_key_id=unquote(parts.username or "") or DEFAULT_KEY,
            secret_access_key=unquote(parts.password or "") or DEFAULT_KEY,
            path=parts.path.rstrip("/"),
        )

    # readiness ------------------------------------------------------------------------------
    def _client(self, info: AwsInfo, timeout: float) -> Any:
        key = f"{info.endpoint_url}|{timeout:.2f}"
        client = self._clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(
                aws_access_key_id=info.access_key_id,
                aws_secret_access_key=info.secret_access_key,
                region_name=info.region,
            )
            client = session.client(
                "s3",
                endpoint_url=info.endpoint_url,
                config=Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"max_attempts": 1, "mode": "standard"},
                ),
            )
            self._clients = {key: client}
        return client

    def probe(self, info: AwsInfo, timeout: float) -> str:
        """A real AWS call (S3 ListBuckets), then the server's flavour and version."""
        from botocore.exceptions import BotoCoreError, ClientError

        timeout = min(timeout, 2.0)
        try:
            self._client(info, timeout).list_buckets()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if (
                code
                in (
                    "InvalidAccessKeyId",
                    "SignatureDoesNotMatch",
                    "AccessDenied",
                    "InvalidClientTokenId",
                    "ExpiredToken",
                )
                or status == 403
            ):
                raise ProbeRefused(f"the endpoint refused the credentials: {exc}") from None
            raise NotReady(str(exc)) from None
        except BotoCoreError as exc:
            raise NotReady(str(exc)) from None
        return self.flavour(info, timeout)

    def flavour(self, info: AwsInfo, timeout: float = 2.0) -> str:
        """``moto 5.2.1`` (our launcher), ``localstack 3.x``, ``moto`` or ``aws-compatible``."""
        base = info.endpoint_url
        attempts: list[tuple[str, Callable[[bytes], str]]] = [
            (f"{base}{EXT_PREFIX}/info", lambda b: f"moto {json.loads(b).get('moto', '?')}"),
            (
                f"{base}/_localstack/health",
                lambda b: f"localstack {json.loads(b).get('version', '?')}",
            ),
            (f"{base}/moto-api/data.json", lambda b: "moto"),
        ]
        for url, read in attempts:
            try:
                status, body = _http("GET", url, timeout)
                if status == 200:
                    return read(body)
            except (OSError, ValueError, AttributeError):
                continue
        return "aws-compatible"

    def server_extensions(self, info: AwsInfo, timeout: float = 2.0) -> bool:
        """True when the endpoint is our moto launcher (per-account reset available)."""
        try:
            status, _ = _http("GET", f"{info.endpoint_url}{EXT_PREFIX}/info", timeout)
        except OSError:
            return False
        return status == 200

    def reset_account(self, info: AwsInfo, account_id: str, timeout: float = 10.0) -> float:
        """Wipe one account on our moto launcher; returns the server-side seconds it took."""
        status, body = _http(
            "POST", f"{info.endpoint_url}{EXT_PREFIX}/reset-account/{account_id}", timeout, data=b""
        )
        if status != 200:
            raise RuntimeError(
                f"resetting AWS account {account_id} failed: HTTP {status} {body[:300]!r}"
            )
        return float(json.loads(body).get("seconds", 0.0))

    # local ----------------------------------------------------------------------------------
    def local_unavailable(self) -> tuple[str, str] | None:
        missing = [
            name for name in ("moto", "flask", "flask_cors", "werkzeug") if _find(name) is None
        ]
        if not missing:
            spec = _find("moto")
            locations = list(spec.submodule_search_locations or []) if spec else []
            if not any(Path(loc, "server.py").is_file() for loc in locations):
                missing = ["moto.server"]
        if missing:
            return (
                f"moto's server is not installed (missing: {', '.join(missing)})",
                f"{INSTALL_HINT}, or set PYTEST_COMMONS_AWS_ENDPOINT_URL to a LocalStack, "
                "or start Docker",
            )
        return None

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        argv = [
            sys.executable,
            "-m",
            "pytest_commons.services.aws.moto",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        env = {
            "MOTO_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": str(datadir),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        info = AwsInfo(host="127.0.0.1", port=port, region=self.region)
        return LocalLaunch(
            argv=argv,
            info=info.to_dict(),
            env=env,
            stop_signal=signal.SIGTERM,
            port_in_use_markers=("Address already in use",),
        )

    # docker (LocalStack) ----------------------------------------------------------------------
    def docker_launch(self, image: str) -> DockerLaunch:
        return DockerLaunch(
            image=image,
            container_port=LOCALSTACK_PORT,
            env={
                "EAGER_SERVICE_LOADING": "0",
                "SKIP_SSL_CERT_DOWNLOAD": "1",
                "DISABLE_EVENTS": "1",
                "LOCALSTACK_HOST": "127.0.0.1",
            },
            extra={"wait_log": "Ready."},
        )

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> AwsInfo:
        return AwsInfo(host=host, port=port, region=self.region)


def _find(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


# ----------------------------------------------------------------------------------------------
# The launcher: moto's server plus the two extensions described in the module docstring.
# Runs in the server process only; nothing below is imported by the plugin.
# ----------------------------------------------------------------------------------------------
