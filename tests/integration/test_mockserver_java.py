"""The real MockServer as the local backend's second engine: choosing it, fetching the jar."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_commons._java import FetchError, MavenArtifact, fetch, java_binary, java_major
from pytest_commons._settings import Settings
from pytest_commons.services.mockserver import MOCKSERVER_JAR, MockServerSpec
from tests.helpers import commons_cli


def _spec(**values: str) -> MockServerSpec:
    return MockServerSpec(Settings(lambda key: values.get(key)))


def test_auto_takes_the_engine_without_the_jar(tmp_path: Path) -> None:
    spec = _spec(commons_cache_dir=str(tmp_path), mockserver_engine="auto")
    engine, why = spec.engine()
    assert engine == "commons"
    assert "not in the cache" in why or "Java" in why
    assert spec.local_unavailable() is None  # the engine always serves
    assert "pytest_commons.engines.mockserver" in spec.local_launch(tmp_path, 1, None).argv


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


SMALL = MavenArtifact("org.hamcrest", "hamcrest-core", "1.3", "0" * 64)


def test_fetch_refuses_a_jar_whose_sum_does_not_match(tmp_path: Path) -> None:
    """A real download from Maven Central (45 KB) against a wrong pinned sum: not kept."""
    with pytest.raises(FetchError, match="does not match the pinned"):
        fetch(SMALL, tmp_path, use_mvn=False)
    assert not SMALL.present(tmp_path)
    assert list((tmp_path / "jars").iterdir()) == []


def test_fetch_keeps_a_matching_jar_and_is_then_a_no_op(tmp_path: Path) -> None:
    right = MavenArtifact(
        "org.hamcrest",
        "hamcrest-core",
        "1.3",
        "66fdef91e9739348df7a096aa384a5685f4e875584cce89386a7a47251c4d8e9",
    )
    path = fetch(right, tmp_path, use_mvn=False)
    assert path == right.cached(tmp_path)
    assert path.stat().st_size > 40_000
    assert fetch(right, tmp_path, use_mvn=False) == path


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
    from pytest_commons.services.mockserver import build_class_archive, class_archive

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
