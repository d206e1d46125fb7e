"""The real MockServer as the local backend's second engine: choosing it, fetching the jar."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_commons.core.java import FetchError, MavenArtifact, fetch, java_binary, java_major
from pytest_commons.plugin.settings import Settings
from pytest_commons.services.mockserver.spec import MOCKSERVER_JAR, MockServerSpec
from tests.helpers import commons_cli


def _spec(**values: str) -> MockServerSpec:
    return MockServerSpec(Settings(lambda key: values.get(key)))


def test_auto_takes_the_engine_without_the_jar(tmp_path: Path) -> None:
    spec = _spec(commons_cache_dir=str(tmp_path), mockserver_engine="auto")
    engine, why = spec.engine()
    assert engine == "commons"
    assert "not in the cache" in why or "Java" in why
    assert spec.local_unavailable() is None  # the engine always serves
    assert "pytest_commons.services.mockserver.engine" in spec.local_launch(tmp_path, 1, None).argv


def test_java_without_the_jar_is_unavailable_with_the_remedy(tmp_path: Path) -> None:
    spec = _spec(commons_cache_dir=str(tmp_path), mockserver_engine="java")
    missing = spec.local_unavailable()
    assert missing is not None
    reason, remedy = missing
    assert "mockserver_engine=java" in reason
    assert "pytest-commons fetch mockserver" in remedy


def test_an_invalid_engine_is_refused_naming_the_option() -> None:
    reason, _ = _spec(mockserver_engine="jvm").local_unavailable() or ("", "")
    assert "mockserver_engine='jvm' is not one of auto, java, commons" in reason


def test_auto_takes_the_real_mockserver_with_java_and_the_jar(tmp_path: Path) -> None:
    binary = java_binary()
    if binary is None or (java_major(binary) or 0) < 8:
        pytest.skip("no Java 8+ here")
    jar = MOCKSERVER_JAR.cached(tmp_path)
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"")  # presence is what auto looks at (the sum was checked on fetch)
    spec = _spec(commons_cache_dir=str(tmp_path))
    assert spec.engine()[0] == "java"
    argv = spec.local_launch(tmp_path, 4321, None).argv
    assert argv[0] == binary
    assert "-Dmockserver.localBoundIP=127.0.0.1" in argv
    assert argv[-4:] == ["-jar", str(jar), "-serverPort", "4321"]


@pytest.fixture
def file_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[MavenArtifact, str]:
    """A Maven repository laid out on disk with one small jar, used through
    ``$PYTEST_COMMONS_MAVEN_REPO=file://...`` (there is no built-in registry URL on purpose);
    gives the artifact and the jar's real SHA-256."""
    import hashlib
    import zipfile

    repo = tmp_path / "repo"
    folder = repo / "org" / "example" / "tiny" / "1.0"
    folder.mkdir(parents=True)
    jar = folder / "tiny-1.0.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        archive.writestr("org/example/Tiny.class", bytes(range(256)) * 200)
    monkeypatch.setenv("PYTEST_COMMONS_MAVEN_REPO", repo.as_uri())
    real = hashlib.sha256(jar.read_bytes()).hexdigest()
    return MavenArtifact("org.example", "tiny", "1.0", "0" * 64), real


def test_fetch_refuses_a_jar_whose_sum_does_not_match(
    tmp_path: Path, file_repo: tuple[MavenArtifact, str]
) -> None:
    """A real download (from a file:// Maven repository) against a wrong pinned sum: not kept."""
    wrong, _real = file_repo
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match="does not match the pinned"):
        fetch(wrong, cache, use_mvn=False)
    assert not wrong.present(cache)
    assert list((cache / "jars").iterdir()) == []


def test_fetch_keeps_a_matching_jar_and_is_then_a_no_op(
    tmp_path: Path, file_repo: tuple[MavenArtifact, str]
) -> None:
    wrong, real = file_repo
    right = MavenArtifact(wrong.group, wrong.artifact, wrong.version, real)
    cache = tmp_path / "cache"
    path = fetch(right, cache, use_mvn=False)
    assert path == right.cached(cache)
    assert path.stat().st_size > 40_000
    (tmp_path / "repo" / "org" / "example" / "tiny" / "1.0" / "tiny-1.0.jar").unlink()
    assert fetch(right, cache, use_mvn=False) == path  # served from the cache, no download


def test_fetch_cli_and_doctor_name_the_engine(tmp_path: Path) -> None:
    env = {**os.environ, "PYTEST_COMMONS_COMMONS_CACHE_DIR": str(tmp_path)}
    doctor = commons_cli("doctor", env=env)
    assert "  local engine: commons (auto: " in doctor.stdout  # no jar in this cache
    bad = commons_cli("fetch", "nothing", env=env)
    assert bad.returncode != 0
    assert "invalid choice" in bad.stderr


def test_fetch_builds_a_class_archive_that_the_launch_uses(tmp_path: Path) -> None:
    """The class-data archive made after the fetch is used by the next start (and a start
    with it answers the probe)."""
    from pytest_commons.services.mockserver.spec import build_class_archive, class_archive

    binary = java_binary()
    real_jar = MOCKSERVER_JAR.cached(Settings.from_env().cache_dir())
    if binary is None or (java_major(binary) or 0) < 13 or not real_jar.is_file():
        pytest.skip("needs Java 13+ and the fetched jar (pytest-commons fetch mockserver)")
    jar = MOCKSERVER_JAR.cached(tmp_path)
    jar.parent.mkdir(parents=True)
    jar.symlink_to(real_jar)
    archive = build_class_archive(binary, jar)
    assert archive == class_archive(binary, jar)
    assert archive.is_file()
    argv = (
        _spec(commons_cache_dir=str(tmp_path), mockserver_engine="java")
        .local_launch(tmp_path, 1, None)
        .argv
    )
    assert f"-XX:SharedArchiveFile={archive}" in argv
