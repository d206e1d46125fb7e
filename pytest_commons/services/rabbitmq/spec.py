"""RabbitMQ: connection info, the readiness probe (an AMQP handshake, then the management API),
the management client the fixtures use, and the local and Docker launches.

The local server is Debian's ``rabbitmq-server`` (RabbitMQ 3.10 on Erlang 25), started per
run with its own node name, Erlang cookie, config, plugins file and mnesia/log directories in
the run's private data directory. Every listener is on 127.0.0.1: AMQP, the management API,
the Erlang distribution port (``distribution.listener.interface``) and a private ``epmd``
started beside the node on its own port (``ERL_EPMD_ADDRESS``/``ERL_EPMD_PORT``; the node is
told not to start the system one), in the node's process group, so it stops with it.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pytest_commons.core.host import free_port
from pytest_commons.errors import NotReady, ProbeRefused
from pytest_commons.services.base import (
    ConnectionInfo,
    DockerLaunch,
    LocalLaunch,
    SecretURL,
    ServiceSpec,
)
from pytest_commons.services.rabbitmq import RabbitmqConfig

if TYPE_CHECKING:
    import httpx

AMQP_PORT = 5672
MANAGEMENT_PORT = 15672
#: where Debian (and the upstream generic unix package) put the server script that does not
#: switch users; /usr/sbin/rabbitmq-server is a wrapper that runs it as the rabbitmq user
SERVER_DIRS = ["/usr/lib/rabbitmq/bin", "/usr/local/opt/rabbitmq/sbin", "/opt/homebrew/sbin"]
INSTALL_HINT = "apt-get install rabbitmq-server"


@dataclass(frozen=True, repr=False)
class RabbitmqInfo(ConnectionInfo):
    """Where a RabbitMQ server listens, how to log in, which virtual host, and where its
    management API is (``management_port`` 0: none known)."""

    user: str = "guest"
    password: str = ""
    vhost: str = "/"
    management_host: str = ""
    management_port: int = 0

    @property
    def url(self) -> str:
        """``amqp://user:password@host:port/vhost`` (the vhost quoted: ``/`` is ``%2F``), a
        :class:`SecretURL` whose repr masks the password."""
        auth = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@"
        return SecretURL(f"amqp://{auth}{self.address}/{quote(self.vhost, safe='')}")

    @property
    def management_url(self) -> str:
        """``http://host:port`` of the management API, or "" when none is known."""
        if not self.management_port:
            return ""
        return f"http://{self.management_host or self.host}:{self.management_port}"

    def with_vhost(self, vhost: str) -> RabbitmqInfo:
        return replace(self, vhost=vhost)

    def describe(self) -> str:
        return f"{self.address} vhost {self.vhost}"


class RabbitmqSpec(ServiceSpec[RabbitmqInfo]):
    config: RabbitmqConfig
    name = "rabbitmq"
    info_type = RabbitmqInfo
    driver_module = "pika"
    install_hint = INSTALL_HINT

    def parse_url(self, url: str) -> RabbitmqInfo:
        parts = urlsplit(url)
        if parts.scheme != "amqp":
            raise ValueError(f"scheme must be amqp://, got {parts.scheme or 'none'!r}")
        if not parts.hostname:
            raise ValueError("no host")
        try:
            port = parts.port or AMQP_PORT
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        management = self.config.management_url or ""
        mhost, mport = parts.hostname, MANAGEMENT_PORT
        if management:
            mparts = urlsplit(management)
            if mparts.scheme != "http" or not mparts.hostname:
                raise ValueError(
                    f"{self.config.named('rabbitmq_management_url')}: must be http://host:port"
                )
            mhost, mport = mparts.hostname, mparts.port or MANAGEMENT_PORT
        return RabbitmqInfo(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            vhost=vhost,
            management_host=mhost,
            management_port=mport,
        )

    # driver -----------------------------------------------------------------------------------
    def parameters(self, info: RabbitmqInfo, *, timeout: float = 10, **kwargs: Any) -> Any:
        """pika ``ConnectionParameters`` for ``info`` (one connection attempt)."""
        import pika

        kwargs.setdefault("connection_attempts", 1)
        kwargs.setdefault("socket_timeout", timeout)
        kwargs.setdefault("stack_timeout", timeout)
        kwargs.setdefault("blocked_connection_timeout", timeout)
        return pika.ConnectionParameters(
            host=info.host,
            port=info.port,
            virtual_host=info.vhost,
            credentials=pika.PlainCredentials(info.user, info.password),
            **kwargs,
        )

    def connect(self, info: RabbitmqInfo, *, timeout: float = 10, **kwargs: Any) -> Any:
        """A pika ``BlockingConnection``."""
        import pika

        return pika.BlockingConnection(self.parameters(info, timeout=timeout, **kwargs))

    def management(self, info: RabbitmqInfo, timeout: float = 10) -> httpx.Client:
        """An httpx client on the management API (``/api``), logged in as ``info.user``."""
        import httpx

        if not info.management_url:
            raise ProbeRefused(
                "no management API is known for this server: the fixtures need it to make "
                "their virtual hosts (set PYTEST_COMMONS_RABBITMQ_MANAGEMENT_URL, and enable "
                "the rabbitmq_management plugin)"
            )
        return httpx.Client(
            base_url=f"{info.management_url}/api",
            auth=(info.user, info.password),
            timeout=timeout,
        )

    def probe(self, info: RabbitmqInfo, timeout: float) -> str:
        import pika.exceptions as pex

        try:
            conn = self.connect(info, timeout=timeout)
        except (pex.ProbableAuthenticationError, pex.AuthenticationError) as exc:
            raise ProbeRefused(
                f"the server refused the credentials of {info.user!r}: {exc!r}"
            ) from None
        except pex.ProbableAccessDeniedError as exc:
            raise ProbeRefused(
                f"the user {info.user!r} may not open the virtual host {info.vhost!r}: {exc!r}"
            ) from None
        except (pex.AMQPError, OSError) as exc:
            raise NotReady(f"no AMQP handshake yet: {exc!r}") from None
        try:
            props = getattr(conn._impl, "server_properties", {}) or {}
            version = props.get("version", b"?")
        finally:
            conn.close()
        if info.management_port:
            self._probe_management(info, timeout)
        return version.decode() if isinstance(version, bytes) else str(version)

    def _probe_management(self, info: RabbitmqInfo, timeout: float) -> None:
        import httpx

        try:
            with self.management(info, timeout=min(timeout, 5)) as api:
                response = api.get("/overview")
        except httpx.HTTPError as exc:
            raise NotReady(f"management API not answering yet: {exc!r}") from None
        if response.status_code == 401:
            raise ProbeRefused(
                f"the management API at {info.management_url} refused {info.user!r} "
                "(the user needs the management tag)"
            )
        if response.status_code != 200:
            raise NotReady(f"management API answered {response.status_code}")

    # local ------------------------------------------------------------------------------------
    def server_script(self) -> str | None:
        """The rabbitmq-server script: the explicit option, the usual directories, PATH."""
        explicit = self.config.server_script
        if explicit:
            return explicit if os.access(explicit, os.X_OK) else None
        for directory in SERVER_DIRS:
            candidate = Path(directory) / "rabbitmq-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        return shutil.which("rabbitmq-server")

    def local_unavailable(self) -> tuple[str, str] | None:
        explicit = self.config.server_script
        if explicit and not os.access(explicit, os.X_OK):
            return (
                f"no executable rabbitmq-server at {self.config.named('rabbitmq_server_script')}",
                "point it at the rabbitmq-server script (Debian: /usr/lib/rabbitmq/bin)",
            )
        if self.server_script() is None:
            return (
                "rabbitmq-server is not installed",
                f"{INSTALL_HINT}, set PYTEST_COMMONS_RABBITMQ_URL, or start Docker",
            )
        if shutil.which("epmd") is None:
            return ("epmd (Erlang) is not on PATH", f"{INSTALL_HINT} (it brings erlang-base)")
        return None

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        script = self.server_script()
        assert script is not None
        epmd = shutil.which("epmd") or "epmd"
        epmd_port, dist_port, management_port = free_port(), free_port(), free_port()
        (datadir / "mnesia").mkdir(exist_ok=True)
        (datadir / "log").mkdir(exist_ok=True)
        conf = datadir / "rabbitmq.conf"
        conf.write_text(
            f"listeners.tcp.1 = 127.0.0.1:{port}\n"
            "distribution.listener.interface = 127.0.0.1\n"
            f"distribution.listener.port_range.min = {dist_port}\n"
            f"distribution.listener.port_range.max = {dist_port}\n"
            "management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {management_port}\n"
            "default_user = commons\n"
            f"default_pass = {self.run_password}\n"
            "default_user_tags.administrator = true\n"
            "loopback_users = none\n"
            "log.console = true\n"
            "log.console.level = info\n"
            "log.file = false\n"
        )
        os.chmod(conf, 0o600)
        (datadir / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (datadir / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq/rabbitmq-env.conf
        cookie = datadir / ".erlang.cookie"
        cookie.write_text(self.run_password)
        os.chmod(cookie, 0o400)
        env = {
            "HOME": str(datadir),  # the Erlang cookie
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(epmd_port),
            "RABBITMQ_NODENAME": f"pc{port}@localhost",
            "RABBITMQ_CONFIG_FILE": str(conf),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(datadir / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(datadir / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(datadir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(datadir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(datadir / "log"),
            "RABBITMQ_PID_FILE": str(datadir / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-start_epmd false",
            # the script then execs the VM instead of waiting on it in the background: the pid
            # the plugin supervises is the node's (a SIGKILL of it is the node's death)
            "RUNNING_UNDER_SYSTEMD": "true",
        }
        # a private epmd in the node's process group (stopped with it), then the node
        argv = ["/bin/sh", "-c", '"$1" -address 127.0.0.1 -port "$2" & exec "$3"']
        argv += ["rabbitmq", epmd, str(epmd_port), script]
        info = RabbitmqInfo(
            host="127.0.0.1",
            port=port,
            user="commons",
            password=self.run_password,
            management_port=management_port,
        )
        return LocalLaunch(
            argv=argv,
            info=info.to_dict(),
            env=env,
            # nothing is kept between runs: no need to wait for a clean shutdown
            stop_signal=signal.SIGKILL,
            port_in_use_markers=("eaddrinuse",),
        )

    # docker -----------------------------------------------------------------------------------
    def docker_launch(self, image: str) -> DockerLaunch:
        # the official image (and pytest-commons' test image) read these on first start
        return DockerLaunch(
            image=image,
            container_port=AMQP_PORT,
            env={"RABBITMQ_DEFAULT_USER": "commons", "RABBITMQ_DEFAULT_PASS": self.run_password},
            extra_ports=[MANAGEMENT_PORT],
        )

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> RabbitmqInfo:
        return RabbitmqInfo(
            host=host,
            port=port,
            user="commons",
            password=launch.env["RABBITMQ_DEFAULT_PASS"],
            management_port=launch.published.get(MANAGEMENT_PORT, 0),
        )
