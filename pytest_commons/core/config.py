"""Plain types describing settings and services, shared by the plugin, services and backends.

Nothing heavy is imported here: the plugin loads it with the catalogue.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

#: things the header should say about this process's settings (fallbacks taken)
NOTES: list[str] = []
_CHECKED: dict[str, Path] = {}

_FLAG_TRUE = ("1", "true", "yes", "on")


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


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Origin:
    """The raw resolved values (None: unset, no default) and where each came from
    (``--flag``, ``$PYTEST_COMMONS_…``, ``ini key in file``, ``default``): for error messages
    and the reuse key, never for reading a setting."""

    values: Mapping[str, str | None] = field(default_factory=lambda: _frozen({}))
    sources: Mapping[str, str] = field(default_factory=lambda: _frozen({}))

    def source(self, key: str) -> str:
        """Where the value of option ``key`` came from."""
        return self.sources.get(key, "default")

    def named(self, key: str) -> str:
        """``key=value (from source)`` for error messages."""
        return f"{key}={self.values.get(key)!r} (from {self.source(key)})"


ConfigT = TypeVar("ConfigT", bound="ServiceConfig")


@dataclass(frozen=True)
class ServiceConfig:
    """One service's options, resolved once (frozen; built by :meth:`RunConfig.resolve`).

    The fields every service has: ``backend`` (``<name>_backend``), ``url``
    (``<name>_<url_key>``) and ``image`` (``<name>_image``). A service with options of its own
    subclasses this next to its ``META`` (``META.config``) with one field per option, named as
    the option without the ``<name>_`` prefix (``kafka_engine`` → ``engine``), typed ``str``
    (the option's default when unset), ``str | None`` or ``bool`` (a flag).
    """

    name: str
    backend: str = "auto"
    url: str | None = None
    image: str = ""
    #: ``<name>_image`` when the user set it (not the default): it wins over what a service
    #: would pick (MockServer's engine image)
    explicit_image: str | None = None
    #: each xdist worker gets a server of its own (``META.per_worker_when``)
    per_worker: bool = False
    #: the option key of ``url`` (``kafka_bootstrap_servers``)
    url_key: str = field(default="", repr=False)
    origin: Origin = field(default_factory=Origin, repr=False, compare=False)

    def source(self, key: str) -> str:
        """Where option ``key`` (``kafka_engine``) came from, for error messages."""
        return self.origin.source(key)

    def named(self, key: str) -> str:
        """``key=value (from source)`` for error messages."""
        return self.origin.named(key)

    def fingerprint(self) -> list[tuple[str, str | None]]:
        """Every option of the service with its raw value (what a kept server must match)."""
        prefix = f"{self.name}_"
        return sorted((k, v) for k, v in self.origin.values.items() if k.startswith(prefix))

    @classmethod
    def resolve(
        cls: type[ConfigT], meta: ServiceMeta, origin: Origin, defaults: Mapping[str, str | None]
    ) -> ConfigT:
        """The service's config from the raw values; ``defaults``: each option's default."""
        name, values = meta.name, origin.values
        url_key = f"{name}_{meta.url_key}"
        kwargs: dict[str, Any] = {
            "name": name,
            "backend": values.get(f"{name}_backend") or "auto",
            "url": values.get(url_key) or None,
            "image": values.get(f"{name}_image") or meta.default_image,
            "explicit_image": (
                values.get(f"{name}_image") or None
                if origin.source(f"{name}_image") != "default"
                else None
            ),
            "per_worker": meta.per_worker(values.get),
            "url_key": url_key,
            "origin": origin,
        }
        hints = typing.get_type_hints(cls)
        own = {f.name for f in dataclasses.fields(ServiceConfig)}
        for f in dataclasses.fields(cls):
            if f.name in own:
                continue
            key = f"{name}_{f.name}"
            raw = values.get(key) or defaults.get(key)
            kind = hints[f.name]
            if kind is bool:
                kwargs[f.name] = (raw or "").strip().lower() in _FLAG_TRUE
            elif kind is str:
                kwargs[f.name] = raw or ""
            else:
                kwargs[f.name] = raw or None
        return cls(**kwargs)


def _cache_path(explicit: str | None, explicit_where: str) -> tuple[Path, str]:
    """The cache directory asked for, and where that came from."""
    if explicit:
        return Path(explicit).expanduser(), explicit_where
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "pytest-commons", "$XDG_CACHE_HOME"
    home = os.path.expanduser("~")
    return Path(home) / ".cache" / "pytest-commons", f"$HOME={home}"


def _start_timeout(raw: str | None) -> float:
    try:
        value = float(raw or 60)
    except ValueError:
        return 60.0
    return value if 0 < value < math.inf else 60.0


#: the run-wide options a kept server must match (besides its service's own)
_RUN_WIDE = ("backend_order", "commons_server_user")


@dataclass(frozen=True)
class RunConfig:
    """The run's settings, resolved once (at ``pytest_configure``, or by the CLI with the same
    code) and passed down to the registry, the backends and the specs, which read its typed
    fields. Frozen: a test that changes the environment never changes what the run's services
    are started with."""

    #: backend ``auto`` tries these, in this order
    backend_order: tuple[str, ...] = ("external", "docker", "local")
    #: ``commons_server_user``: the user local servers run as under root (None: the default)
    server_user: str | None = None
    #: seconds a service may take to become ready
    start_timeout: float = 60.0
    #: the cache directory asked for (:meth:`cache_dir` is the one usable) and its source
    cache_path: Path = field(default_factory=lambda: _cache_path(None, "default")[0])
    cache_where: str = "default"
    #: ``--reuse-services`` or ``--keep-failed``: keep the servers after the run
    reuse: bool = False
    services: Mapping[str, ServiceConfig] = field(default_factory=lambda: _frozen({}))
    origin: Origin = field(default_factory=Origin, repr=False, compare=False)

    def service(self, name: str) -> ServiceConfig:
        """The config of service ``name`` (a spec outside the catalogue, a test's own, gets the
        common fields, unset)."""
        found = self.services.get(name)
        return found if found is not None else ServiceConfig(name=name, origin=self.origin)

    def source(self, key: str) -> str:
        """Where option ``key`` came from, for error messages."""
        return self.origin.source(key)

    def named(self, key: str) -> str:
        """``key=value (from source)`` for error messages."""
        return self.origin.named(key)

    def fingerprint(self, name: str) -> list[tuple[str, str | None]]:
        """The raw values a kept server of service ``name`` must have been started with:
        every option of the service, the backend order and the server user."""
        run = [(key, self.origin.values.get(key)) for key in _RUN_WIDE]
        return sorted([*self.service(name).fingerprint(), *run])

    def cache_dir(self) -> Path:
        """The cache directory; when it cannot be written, a private temporary one for this
        run (the reason is in :data:`NOTES`, shown in the header)."""
        path = self.cache_path
        if str(path) in _CHECKED:
            return _CHECKED[str(path)]
        usable = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            from pytest_commons.core.run import runtime_root

            usable = runtime_root() / "cache"
            usable.mkdir(mode=0o700, exist_ok=True)
            NOTES.append(
                f"cache dir {path} (from {self.cache_where}) is not writable "
                f"({exc.strerror or exc}): using {usable} for now; set --commons-cache-dir "
                "(or $PYTEST_COMMONS_COMMONS_CACHE_DIR) to a writable directory"
            )
        _CHECKED[str(path)] = usable
        return usable

    @classmethod
    def resolve(
        cls,
        values: Mapping[str, str | None],
        sources: Mapping[str, str],
        defaults: Mapping[str, str | None],
        catalogue: Mapping[str, ServiceMeta],
    ) -> RunConfig:
        """Build the run's config from the raw resolved values (``None``: unset), where each
        came from, each option's default and the services' catalogue."""
        origin = Origin(_frozen(values), _frozen(sources))
        order = values.get("backend_order") or "external,docker,local"
        cache_path, cache_where = _cache_path(
            values.get("commons_cache_dir"), origin.source("commons_cache_dir")
        )
        flags = ("reuse_services", "keep_failed")
        return cls(
            backend_order=tuple(p.strip() for p in order.split(",") if p.strip()),
            server_user=values.get("commons_server_user") or None,
            start_timeout=_start_timeout(values.get("service_start_timeout")),
            cache_path=cache_path,
            cache_where=cache_where,
            reuse=any((values.get(k) or "").strip().lower() in _FLAG_TRUE for k in flags),
            services=_frozen(
                {
                    name: meta.config.resolve(meta, origin, defaults)
                    for name, meta in catalogue.items()
                }
            ),
            origin=origin,
        )


@dataclass(frozen=True)
class ServiceMeta:
    """A service's catalogue entry: what the plugin needs to know before the service is used.

    Each service package (``pytest_commons/services/<name>/__init__.py``) defines one as
    ``META``; it imports no driver.
    """

    name: str
    title: str
    #: ``"module:Class"`` of the :class:`~pytest_commons.services.base.ServiceSpec`, imported
    #: when a test first asks for the service; a bare ``"Class"`` means the package's ``spec``
    #: module (``"PostgresSpec"`` → ``pytest_commons.services.postgres.spec:PostgresSpec``)
    spec: str
    backends: tuple[str, ...] = ("external", "docker", "local")
    #: the modules of pytest fixtures and hooks the plugin registers for this service; a name
    #: without a dot is a module of the service's package (default: its ``fixtures``)
    fixtures: tuple[str, ...] = ("fixtures",)
    url_key: str = "url"
    url_help: str = "URL"
    default_image: str = ""
    #: the marker's help (default: "the test uses the <title> service (added automatically).")
    marker_help: str = ""
    #: the service's own options (besides ``<name>_backend``, ``<name>_<url_key>`` and
    #: ``<name>_image``, which every service gets)
    options: tuple[Option, ...] = ()
    #: pip extra that installs the service's drivers (``pip install pytest-commons[<extra>]``;
    #: default: the service's name)
    extra: str = ""
    #: ``(option, value)``: when the option has that value, each xdist worker gets a server of
    #: its own instead of sharing the run's (e.g. ``("kafka_isolation", "broker")``)
    per_worker_when: tuple[str, str] | None = None
    #: ``"module:function"`` giving a failing test's report lines for the service:
    #: ``function(handle, funcargs, kept) -> list[str]`` (what helps most: the test's database
    #: and how to connect, its topics...); imported only when a test that used it fails. A
    #: module without a dot is the package's (``"report:describe"``)
    report: str = ""
    #: the class of the service's resolved options (a :class:`ServiceConfig` subclass with a
    #: typed field per option of ``options``)
    config: type[ServiceConfig] = ServiceConfig

    def __post_init__(self) -> None:
        # the package's conventions: names relative to pytest_commons.services.<name>
        package = f"pytest_commons.services.{self.name}"

        def absolute(ref: str) -> str:
            module = ref.split(":", 1)[0]
            return ref if "." in module else f"{package}.{ref}"

        resolved = {
            "spec": absolute(self.spec if ":" in self.spec else f"spec:{self.spec}"),
            "fixtures": tuple(absolute(module) for module in self.fixtures),
            "report": absolute(self.report) if self.report else "",
            "marker_help": self.marker_help
            or f"the test uses the {self.title} service (added automatically).",
            "extra": self.extra or self.name,
        }
        for key, value in resolved.items():
            object.__setattr__(self, key, value)  # frozen: set once, here

    def per_worker(self, get: Callable[[str], str | None]) -> bool:
        """Whether ``get`` (a settings lookup) asks for a server per xdist worker."""
        if self.per_worker_when is None:
            return False
        key, value = self.per_worker_when
        return (get(key) or "").strip().lower() == value
