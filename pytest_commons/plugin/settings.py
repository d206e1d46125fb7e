"""Resolved settings, readable with or without a pytest config.

:class:`Settings` is the plugin's view of the option values (a look-up by key, and where each
value came from); :meth:`Settings.run_config` turns it, once, into the frozen, typed
:class:`~pytest_commons.core.config.RunConfig` that the registry, the backends and the specs
read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_commons.core.config import NOTES as NOTES  # re-exported: the header shows them
from pytest_commons.core.config import RunConfig


@dataclass
class Settings:
    """Resolved option values, readable without a pytest config (the CLI builds one from env)."""

    get: Callable[[str], str | None]
    #: where a value came from (``--flag``, ``$PYTEST_COMMONS_…``, ``ini key``, ``default``)
    where: Callable[[str], str] | None = None
    _resolved: RunConfig | None = field(default=None, init=False, repr=False, compare=False)

    def source(self, key: str) -> str:
        """Where the value of ``key`` came from, for error messages."""
        if self.where is not None:
            return self.where(key)
        from pytest_commons.plugin.options import OPTIONS

        opt = OPTIONS[key]  # without pytest: the value came from the environment, or is a default
        value = self.get(key)
        return f"${opt.env}" if value is not None and value != opt.default else "default"

    def named(self, key: str) -> str:
        """``key=value (from source)`` for error messages."""
        return f"{key}={self.get(key)!r} (from {self.source(key)})"

    def run_config(self) -> RunConfig:
        """These settings resolved into the frozen, typed run config (once; every option the
        option group knows now, with each service's config)."""
        if self._resolved is None:
            from pytest_commons.plugin.options import OPTIONS
            from pytest_commons.services import SERVICES

            keys = list(OPTIONS)
            self._resolved = RunConfig.resolve(
                {key: self.get(key) for key in keys},
                {key: self.source(key) for key in keys},
                {key: opt.default for key, opt in OPTIONS.items()},
                SERVICES,
            )
        return self._resolved

    def start_timeout(self) -> float:
        return self.run_config().start_timeout

    def cache_dir(self) -> Path:
        """The cache directory; when it cannot be written, a private temporary one for this
        run (the reason is in :data:`NOTES`, shown in the header)."""
        return self.run_config().cache_dir()

    @classmethod
    def from_env(cls) -> Settings:
        from pytest_commons.plugin.options import OPTIONS

        def get(key: str) -> str | None:
            opt = OPTIONS[key]
            return os.environ.get(opt.env) or opt.default

        return cls(get)


def as_run_config(settings: Settings | RunConfig | None) -> RunConfig:
    """``settings`` as a run config (None: the environment's and the defaults)."""
    if isinstance(settings, RunConfig):
        return settings
    return (settings or Settings.from_env()).run_config()
