"""Helpers shared by the project's own tests (fixtures live in conftest.py)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

#: the repository's shared test data (SQL schemas, seed files): see fixtures/README.md
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_file(*parts: str) -> Path:
    """The path of a file under the repository's ``fixtures/`` (it must exist)."""
    path = FIXTURES.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"no test data file {path} (see fixtures/README.md)")
    return path


def python_module(
    module: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m MODULE ARGS`` (text output captured, 120 s at most) and returns it."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def commons_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the ``pytest-commons`` command (``python -m pytest_commons.cli``) and returns it."""
    return python_module("pytest_commons.cli", *args, env=env)


def fake_binary(directory: Path, name: str, script: str) -> Path:
    """A stand-in for a broken installation: a shell script where the server binary goes."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class JavaMockServer:
    """The real MockServer (the pinned jar, as the local backend runs it) for a test module:
    ``host``, ``port``, ``url``, ``reset()``, like :class:`MockServerEngine`."""

    def __init__(self) -> None:
        from pytest_commons.core.host import free_port

        self.host, self.port = "127.0.0.1", free_port()
        self.url = f"http://{self.host}:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> JavaMockServer:
        import tempfile

        from pytest_commons.backends.base import wait_ready
        from pytest_commons.services.mockserver.spec import MockServerInfo, MockServerSpec

        spec = MockServerSpec()
        launch = spec.local_launch(Path(tempfile.gettempdir()), self.port, None)
        self._proc = subprocess.Popen(
            launch.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        info = MockServerInfo(host=self.host, port=self.port)
        wait_ready(spec, "local", info, 60, exited=self._exited)
        return self

    def _exited(self) -> str | None:
        assert self._proc is not None
        code = self._proc.poll()
        return None if code is None else f"exited with code {code}"

    def reset(self) -> None:
        from pytest_commons.services.mockserver.spec import MockServerInfo, control

        control(MockServerInfo(host=self.host, port=self.port), "/mockserver/reset")

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait()


def mockserver_engine_name() -> str:
    """The engine the MockServer suites run on: ``java`` or ``commons``, resolved from
    ``$PYTEST_COMMONS_MOCKSERVER_ENGINE`` as the local backend resolves it (auto: the real
    MockServer when Java and its jar are here)."""
    from pytest_commons.services.mockserver.spec import MockServerSpec

    return MockServerSpec().engine()[0]
