"""The contract every service module implements."""

from __future__ import annotations

import dataclasses
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pytest_commons.core.config import RunConfig, ServiceConfig
from pytest_commons.plugin.settings import Settings, as_run_config
from pytest_commons.services import SERVICES, ServiceMeta

SECRET_FIELDS = frozenset({"password", "secret_access_key", "token"})


def mask_url(url: str) -> str:
    """``scheme://user:secret@host`` → ``scheme://user:***@host``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, hostpart = rest.rpartition("@")
    user, has_pw, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if has_pw else ''}@{hostpart}"


class SecretURL(str):
    """A URL with a password that is a ``str`` (drivers and ``str()`` get the full URL) but whose
    ``repr`` masks the password: pytest's ``-l`` locals, assertion reprs and so junit XML show
    ``redis://:***@host:port/N``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask_url(str(self)))


@dataclass(frozen=True)
class ConnectionInfo:
    """Where a service instance listens. Frozen; ``repr`` never shows a password."""

    host: str
    port: int

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                parts.append(f"{f.name}='***'")
            elif isinstance(value, str) and "://" in value:
                parts.append(f"{f.name}={mask_url(value)!r}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    __str__ = __repr__

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self) -> str:
        """A one-line, password-free description for reports."""
        return self.address


InfoT = TypeVar("InfoT", bound=ConnectionInfo)


@dataclass
class LocalLaunch:
    """How the local backend starts one server process."""

    argv: list[str]
    info: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    run_as_server_user: bool = False
    stop_signal: int = signal.SIGTERM
    graceful_signal: int = signal.SIGTERM  # for stop()/restart() in tests: data must survive
    port_in_use_markers: tuple[str, ...] = ("Address already in use",)
    #: what the start-up readiness probe connects to when it is not ``info`` (PostgreSQL: its
    #: private unix socket, before the run's password exists); then ``local_secure`` runs
    ready_info: dict[str, Any] | None = None
    #: more paths to delete with the instance (e.g. a socket directory outside the run dir)
    paths: list[str] = field(default_factory=list)


@dataclass
class DockerLaunch:
    """How the docker backend starts one container (used by the docker backend)."""

    image: str
    container_port: int
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] | None = None
    #: more container ports to publish on 127.0.0.1 (a management API beside the protocol)
    extra_ports: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: container port -> host port, filled in by the docker backend before ``docker_info``
    published: dict[int, int] = field(default_factory=dict)


class ServiceSpec(ABC, Generic[InfoT]):
    """A kind of server: how to reach it, probe it, isolate tests on it and start it per backend.

    Implementations must not import their drivers at module level.
    """

    name: ClassVar[str]
    info_type: ClassVar[type[ConnectionInfo]]
    install_hint: ClassVar[str] = ""
    driver_hint: ClassVar[str] = ""

    #: the service's own resolved options (a subclass narrows it to its ``META.config``)
    config: ServiceConfig

    def __init__(self, settings: RunConfig | Settings | None = None) -> None:
        #: the run's resolved settings (cache dir, start timeout…)
        self.run_config = as_run_config(settings)
        self.config = self.run_config.service(self.name)

    @property
    def meta(self) -> ServiceMeta:
        return SERVICES[self.name]

    @property
    def per_worker(self) -> bool:
        """Whether each xdist worker gets a server of its own (``META.per_worker_when``)."""
        return self.config.per_worker

    def info_from_dict(self, data: dict[str, Any]) -> InfoT:
        return self.info_type(**data)  # type: ignore[return-value]

    # external -------------------------------------------------------------------------------
    @abstractmethod
    def parse_url(self, url: str) -> InfoT:
        """Parse and validate an external URL; raise ValueError with a readable reason."""

    # readiness ------------------------------------------------------------------------------
    @abstractmethod
    def probe(self, info: InfoT, timeout: float) -> str:
        """Talk to the server in its own protocol; return its version.

        Raise :class:`~pytest_commons.errors.NotReady` while it cannot answer yet and
        :class:`~pytest_commons.errors.ProbeRefused` when it answers but refuses us.
        """

    #: the driver module the probe and fixtures import; it is imported in the background
    #: while the server starts, and only looked up (not imported) to check it is installed
    driver_module: ClassVar[str | None] = None
    driver_extra: ClassVar[str] = ""

    def check_driver(self) -> str | None:
        """None when the Python driver the fixtures need is installed, else the reason."""
        import importlib.util

        if self.driver_module and importlib.util.find_spec(self.driver_module) is None:
            extra = self.driver_extra or self.name
            return f'{self.driver_module} is not installed (pip install "pytest-commons[{extra}]")'
        return None

    # local ----------------------------------------------------------------------------------
    def local_unavailable(self) -> tuple[str, str] | None:
        """None when the local engine is installed here, else (reason, remedy)."""
        return ("no local engine for this service", "")

    def local_prepare(self, datadir: Path, server_user: tuple[int, int] | None) -> None:
        """Fill ``datadir`` before the first start (e.g. copy an initialised cluster)."""

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        raise NotImplementedError

    def local_secure(self, launch: LocalLaunch) -> None:
        """After the first readiness probe: give the server the run's credentials (if the
        engine could not be started with them)."""

    def local_ready(self, datadir: Path, server_user: tuple[int, int] | None) -> None:
        """After the server answered and got its credentials: work for later runs that must
        not slow this start down (e.g. a spare copy of the cached data directory)."""

    @property
    def run_password(self) -> str:
        """A random password for this start of a local server (never cached, never logged)."""
        if not hasattr(self, "_run_password"):
            import secrets

            self._run_password = secrets.token_hex(16)
        return self._run_password

    # docker ---------------------------------------------------------------------------------
    def docker_image(self) -> str:
        """The image the docker backend runs: ``<name>_image`` if set, else the catalogue's."""
        return self.config.image

    def docker_launch(self, image: str) -> DockerLaunch:
        raise NotImplementedError

    def docker_secure(self, info: InfoT) -> InfoT:
        """After the first readiness probe: replace the image's fixed credentials (which
        every local user could read in the docs) by the run's password; return the info
        that carries it. Called once per container, not after a restart (the engine keeps
        the new password in its data)."""
        return info

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> InfoT:
        raise NotImplementedError
