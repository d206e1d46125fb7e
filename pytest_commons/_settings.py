"""Resolved settings, readable with or without a pytest config."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Settings:
    """Resolved option values, readable without a pytest config (the CLI builds one from env)."""

    get: Callable[[str], str | None]
    #: where a value came from (``--flag``, ``$PYTEST_COMMONS_…``, ``ini key``, ``default``)
    where: Callable[[str], str] | None = None

    def source(self, key: str) -> str:
        """Where the value of ``key`` came from, for error messages."""
        if self.where is not None:
            return self.where(key)
        from pytest_commons._options import OPTIONS

        opt = OPTIONS[key]  # without pytest: the value came from the environment, or is a default
        value = self.get(key)
        return f"${opt.env}" if value is not None and value != opt.default else "default"

    def named(self, key: str) -> str:
        """``key=value (from source)`` for error messages."""
        return f"{key}={self.get(key)!r} (from {self.source(key)})"

    def start_timeout(self) -> float:
        try:
            value = float(self.get("service_start_timeout") or 60)
        except ValueError:
            return 60.0
        return value if 0 < value < float("inf") else 60.0

    def cache_dir(self) -> Path:
        explicit = self.get("commons_cache_dir")
        if explicit:
            return Path(explicit)
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "pytest-commons"

    @classmethod
    def from_env(cls) -> Settings:
        from pytest_commons._options import OPTIONS

        def get(key: str) -> str | None:
            opt = OPTIONS[key]
            return os.environ.get(opt.env) or opt.default

        return cls(get)
