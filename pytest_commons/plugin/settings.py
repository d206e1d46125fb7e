"""Resolved settings, readable with or without a pytest config."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: things the header should say about this process's settings (fallbacks taken)
NOTES: list[str] = []
_CHECKED: dict[str, Path] = {}


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
        from pytest_commons.plugin.options import OPTIONS

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
        """The cache directory; when it cannot be written, a private temporary one for this
        run (the reason is in :data:`NOTES`, shown in the header)."""
        explicit = self.get("commons_cache_dir")
        if explicit:
            path, where = Path(explicit).expanduser(), self.source("commons_cache_dir")
        elif os.environ.get("XDG_CACHE_HOME"):
            path, where = Path(os.environ["XDG_CACHE_HOME"]) / "pytest-commons", "$XDG_CACHE_HOME"
        else:
            home = os.path.expanduser("~")
            path, where = Path(home) / ".cache" / "pytest-commons", f"$HOME={home}"
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
                f"cache dir {path} (from {where}) is not writable "
                f"({exc.strerror or exc}): using {usable} for now; set --commons-cache-dir "
                "(or $PYTEST_COMMONS_COMMONS_CACHE_DIR) to a writable directory"
            )
        _CHECKED[str(path)] = usable
        return usable

    @classmethod
    def from_env(cls) -> Settings:
        from pytest_commons.plugin.options import OPTIONS

        def get(key: str) -> str | None:
            opt = OPTIONS[key]
            return os.environ.get(opt.env) or opt.default

        return cls(get)
