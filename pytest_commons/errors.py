"""Errors that say which service, which backend, what failed and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence


class CommonsError(Exception):
    """Base class of pytest-commons errors; ``str()`` is the full, user-facing message."""


class ConfigError(CommonsError):
    """A setting is wrong (malformed URL, unknown backend, bad value)."""

    def __init__(self, service: str, backend: str, problem: str, remedy: str = "") -> None:
        self.service, self.backend, self.problem, self.remedy = service, backend, problem, remedy
        text = f"{service} ({backend} backend): {problem}"
        if remedy:
            text += f"\n  remedy: {remedy}"
        super().__init__(text)


class BackendUnavailable(CommonsError):
    """A backend cannot serve a service here; ``reason`` is one line, ``remedy`` says what to do."""

    def __init__(self, reason: str, remedy: str = "") -> None:
        self.reason, self.remedy = reason, remedy
        super().__init__(f"{reason} ({remedy})" if remedy else reason)


class ServiceUnavailable(CommonsError):
    """No backend can serve the service; one reason per backend tried."""

    def __init__(self, service: str, reasons: Sequence[tuple[str, str]]) -> None:
        self.service, self.reasons = service, list(reasons)
        lines = [f"{service}: no backend available"]
        lines += [f"  - {backend}: {reason}" for backend, reason in self.reasons]
        super().__init__("\n".join(lines))


class ServiceStartError(CommonsError):
    """A server was found but failed to start, or an external one refused us."""

    def __init__(
        self,
        service: str,
        backend: str,
        what: str,
        *,
        log_tail: str = "",
        log_path: str = "",
        remedy: str = "",
    ) -> None:
        self.service, self.backend, self.what = service, backend, what
        self.log_tail, self.log_path, self.remedy = log_tail, log_path, remedy
        lines = [f"{service} ({backend} backend): {what}"]
        if log_tail.strip():
            where = f" of {log_path}" if log_path else ""
            lines.append(f"  last lines{where}:")
            lines += [f"    | {line}" for line in log_tail.rstrip().splitlines()]
        if remedy:
            lines.append(f"  remedy: {remedy}")
        super().__init__("\n".join(lines))


def keep_log(error: ServiceStartError, keep_dir: str) -> ServiceStartError:
    """The same error, quoting a copy of its server log kept in ``keep_dir`` (the run
    directory holding the original is deleted at the end of the run). The newest 20 copies
    are kept."""
    import os
    import shutil
    import time

    if not error.log_path or not os.path.isfile(error.log_path):
        return error
    try:
        os.makedirs(keep_dir, mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = os.path.join(keep_dir, f"{error.service}-{stamp}-{os.getpid()}.log")
        fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as dst, open(error.log_path, "rb") as src:
            shutil.copyfileobj(src, dst)
        from pytest_commons.core.host import keep_newest

        keep_newest(keep_dir, 20)
    except OSError:
        return error
    return ServiceStartError(
        error.service,
        error.backend,
        error.what,
        log_tail=error.log_tail,
        log_path=kept,
        remedy=error.remedy,
    )


class NotReady(Exception):
    """Raised by a readiness probe when the server does not answer yet (the wait goes on)."""


class ProbeRefused(CommonsError):
    """Raised by a readiness probe when the server answers but refuses us (the wait stops)."""


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def read_tail(path: str, lines: int = 15, max_bytes: int = 65536) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return tail(data, lines)
