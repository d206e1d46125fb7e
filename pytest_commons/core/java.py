"""Java engines: finding a JVM and putting pinned Maven Central artifacts in the cache.

Used by engines that run the real system beside the project's stand-ins (MockServer's jar;
the same helpers serve any other pinned jar). Nothing here is needed on the default path:
without Java, the stand-in engines serve as before.

Artifacts are pinned by version *and* SHA-256: ``fetch`` takes them with Maven
(``mvn dependency:copy``) when ``mvn`` is on PATH, else with a plain HTTPS download from Maven
Central, and in both cases checks the sum before the file is renamed into the cache.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_commons.core.childenv import child_env

#: where the HTTPS fallback (no ``mvn`` here) downloads pinned jars from: the URL of a Maven
#: repository (Maven Central or a mirror of it), from the environment; mvn knows its own.
MAVEN_REPO_ENV = "PYTEST_COMMONS_MAVEN_REPO"


def maven_repo() -> str:
    """The Maven repository URL for HTTPS downloads; :class:`FetchError` when none is set."""
    repo = os.environ.get(MAVEN_REPO_ENV, "").strip().rstrip("/")
    if not repo:
        raise FetchError(
            f"mvn is not installed and ${MAVEN_REPO_ENV} is not set: install Maven "
            f"(apt-get install maven) or set ${MAVEN_REPO_ENV} to the URL of Maven Central or "
            "a mirror of it"
        )
    return repo


_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_binary() -> str | None:
    """``$JAVA_HOME/bin/java`` when set and executable, else ``java`` on PATH, else None."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


@functools.lru_cache(maxsize=8)
def java_major(binary: str) -> int | None:
    """The feature release of a ``java`` binary (17 for 17.0.15; 8 for 1.8): from the JDK's
    ``release`` file when there is one (no JVM start), else from ``java -version``; None when
    it does not answer."""
    real = Path(os.path.realpath(binary))
    for release in (real.parent.parent / "release", real.parent.parent.parent / "release"):
        if release.is_file():
            match = re.search(r'JAVA_VERSION="(\d+)(?:\.(\d+))?', release.read_text())
            if match:
                return _major(match)
    try:
        out = subprocess.run(
            [binary, "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=child_env(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(out.stderr + out.stdout)
    return _major(found) if found else None


def _major(match: re.Match[str]) -> int:
    first = int(match.group(1))
    return int(match.group(2) or 0) if first == 1 else first


@dataclass(frozen=True)
class MavenArtifact:
    """One pinned jar on Maven Central."""

    group: str
    artifact: str
    version: str
    sha256: str
    classifier: str = ""

    @property
    def filename(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.jar"

    @property
    def coordinates(self) -> str:
        """``group:artifact:version[:jar:classifier]`` as Maven takes it."""
        base = f"{self.group}:{self.artifact}:{self.version}"
        return f"{base}:jar:{self.classifier}" if self.classifier else base

    @property
    def url(self) -> str:
        return (
            f"{maven_repo()}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/"
            f"{self.filename}"
        )

    def cached(self, cache_dir: Path) -> Path:
        """Where the jar lives in the cache (it may not be there)."""
        return cache_dir / "jars" / self.filename

    def present(self, cache_dir: Path) -> bool:
        """The jar is in the cache (its sum was checked when it was put there)."""
        return self.cached(cache_dir).is_file()


class FetchError(Exception):
    """An artifact could not be fetched, or its sum did not match."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(artifact: MavenArtifact, cache_dir: Path, *, use_mvn: bool | None = None) -> Path:
    """Put ``artifact`` in the cache (no-op when it is there); returns its path.

    ``use_mvn``: None = Maven when ``mvn`` is on PATH, else HTTPS. Raises :class:`FetchError`.
    """
    dest = artifact.cached(cache_dir)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    mvn = shutil.which("mvn") if use_mvn in (None, True) else None
    if use_mvn and mvn is None:
        raise FetchError("mvn is not on PATH")
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        got = _with_maven(mvn, artifact, Path(tmp)) if mvn else _with_https(artifact, Path(tmp))
        actual = sha256_of(got)
        if actual != artifact.sha256:
            raise FetchError(
                f"{artifact.filename}: SHA-256 {actual} does not match the pinned "
                f"{artifact.sha256}; the file was not kept"
            )
        os.replace(got, dest)
    return dest


def _with_maven(mvn: str, artifact: MavenArtifact, tmp: Path) -> Path:
    out = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "dependency:copy",
            f"-Dartifact={artifact.coordinates}",
            f"-DoutputDirectory={tmp}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=child_env(),
    )
    got = tmp / artifact.filename
    if out.returncode != 0 or not got.is_file():
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-10:])
        raise FetchError(f"mvn dependency:copy {artifact.coordinates} failed:\n{tail}")
    return got


def _with_https(artifact: MavenArtifact, tmp: Path) -> Path:
    import urllib.request

    got = tmp / artifact.filename
    try:
        with urllib.request.urlopen(artifact.url, timeout=120) as response, open(got, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
    except OSError as exc:
        raise FetchError(f"downloading {artifact.url} failed: {exc}") from exc
    return got
