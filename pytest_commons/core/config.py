"""Plain types describing settings and services, shared by the plugin, services and backends.

Nothing heavy is imported here: the plugin loads it with the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Option:
    """One setting, reachable as ``--flag``, ini ``key`` and ``$PYTEST_COMMONS_KEY``."""

    key: str
    help: str
    default: str | None = None
    choices: tuple[str, ...] | None = None
    flag: bool = False
    env_override: str | None = None
    extra_env: tuple[str, ...] = field(default=())
    group: str = "commons"
    #: how the value is checked at configure time: "seconds" (a finite number > 0), "path"
    #: (an explicit binary or directory that must exist) or "" (free text)
    kind: str = ""

    @property
    def cli(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        return self.env_override or "PYTEST_COMMONS_" + self.key.upper()


@dataclass(frozen=True)
class ServiceMeta:
    """A service's catalogue entry: what the plugin needs to know before the service is used.

    Each service package (``pytest_commons/services/<name>/__init__.py``) defines one as
    ``META``; it imports no driver.
    """

    name: str
    title: str
    #: ``"module:Class"`` of the :class:`~pytest_commons.services.base.ServiceSpec`, imported
    #: when a test first asks for the service
    spec: str
    backends: tuple[str, ...]
    #: the modules of pytest fixtures and hooks the plugin registers for this service
    fixtures: tuple[str, ...] = ()
    url_key: str = "url"
    url_help: str = "URL"
    default_image: str = ""
    marker_help: str = ""
    #: the service's own options (besides ``<name>_backend``, ``<name>_<url_key>`` and
    #: ``<name>_image``, which every service gets)
    options: tuple[Option, ...] = ()
    #: pip extra that installs the service's drivers (``pip install pytest-commons[<extra>]``)
    extra: str = ""
    #: ``(option, value)``: when the option has that value, each xdist worker gets a server of
    #: its own instead of sharing the run's (e.g. ``("kafka_isolation", "broker")``)
    per_worker_when: tuple[str, str] | None = None
    #: ``"module:function"`` giving a failing test's report lines for the service:
    #: ``function(handle, funcargs, kept) -> list[str]`` (what helps most: the test's database
    #: and how to connect, its topics...); imported only when a test that used it fails
    report: str = ""

    def per_worker(self, get: Callable[[str], str | None]) -> bool:
        """Whether ``get`` (a settings lookup) asks for a server per xdist worker."""
        if self.per_worker_when is None:
            return False
        key, value = self.per_worker_when
        return (get(key) or "").strip().lower() == value
