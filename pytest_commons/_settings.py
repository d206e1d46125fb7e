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

    def start_timeout(self) -> float:
        return float(self.get("service_start_timeout") or 60)

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
