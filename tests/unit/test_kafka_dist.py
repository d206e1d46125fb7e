"""The Apache Kafka distribution: pinned jars, the HTTPS path's checksum check, the cache marker,
the Java version check."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_commons import cli
from pytest_commons.services.kafka import dist as kafka_dist


def _fake_repo(root: Path, *, corrupt: str | None = None) -> str:
    """A Maven-layout directory holding a file per pinned jar (content: its own name)."""
    for group, artifact, version, _sha in kafka_dist.JARS:
        path = root / group.replace(".", "/") / artifact / version
        path.mkdir(parents=True, exist_ok=True)
        name = kafka_dist.jar_name(artifact, version)
        (path / name).write_text("tampered" if name == corrupt else name)
    return root.as_uri()


def test_a_jar_whose_checksum_differs_is_refused(tmp_path: Path) -> None:
    first = kafka_dist.jar_name(kafka_dist.JARS[0][1], kafka_dist.JARS[0][2])
    repo = _fake_repo(tmp_path / "repo")
    with pytest.raises(RuntimeError, match=rf"{first}: SHA-256 \w+ does not match the pinned"):
        kafka_dist.fetch(tmp_path / "cache", use_mvn=False, repo=repo, log=lambda _l: None)
    assert kafka_dist.installed(tmp_path / "cache") is None
    assert not (kafka_dist.dist_dir(tmp_path / "cache") / "jars").exists()


def test_the_set_counts_only_when_complete(tmp_path: Path) -> None:
    jars = kafka_dist.dist_dir(tmp_path) / "jars"
    jars.mkdir(parents=True)
    for _g, artifact, version, _sha in kafka_dist.JARS:
        (jars / kafka_dist.jar_name(artifact, version)).write_text("x")
    assert kafka_dist.installed(tmp_path) is None, "no .complete marker yet"
    (kafka_dist.dist_dir(tmp_path) / kafka_dist.COMPLETE).write_text("4\n")
    assert kafka_dist.installed(tmp_path) == jars
    (jars / kafka_dist.jar_name(kafka_dist.JARS[-1][1], kafka_dist.JARS[-1][2])).unlink()
    assert kafka_dist.installed(tmp_path) is None, "a jar is missing"


def test_the_pom_asks_for_the_pinned_roots() -> None:
    pom = kafka_dist._pom()
    assert f"<artifactId>kafka_2.13</artifactId><version>{kafka_dist.KAFKA_VERSION}<" in pom
    assert {a for _g, a, _v, _s in kafka_dist.JARS} >= {a for _g, a, _v in kafka_dist.ROOTS}


def test_cli_fetch_reports_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The HTTPS path (``--https``, from $PYTEST_COMMONS_MAVEN_REPO) refuses a tampered jar:
    exit 1, the jar named, nothing installed."""
    from pytest_commons.core.java import MAVEN_REPO_ENV

    monkeypatch.setenv("PYTEST_COMMONS_COMMONS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(MAVEN_REPO_ENV, _fake_repo(tmp_path / "repo"))
    assert cli.main(["fetch", "kafka", "--https"]) == 1
    first = kafka_dist.jar_name(kafka_dist.JARS[0][1], kafka_dist.JARS[0][2])
    err = capsys.readouterr().err
    assert f"pytest-commons fetch kafka: failed: {first}: SHA-256 " in err
    assert kafka_dist.installed(tmp_path / "cache") is None


def test_cli_fetch_over_https_without_a_repository_names_the_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_commons.core.java import MAVEN_REPO_ENV

    monkeypatch.setenv("PYTEST_COMMONS_COMMONS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(MAVEN_REPO_ENV, raising=False)
    assert cli.main(["fetch", "kafka", "--https"]) == 1
    err = capsys.readouterr().err
    assert f"pytest-commons fetch kafka: failed: mvn is not installed and ${MAVEN_REPO_ENV}" in err


def test_java_problem_names_an_old_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "jdk8"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\nexit 1\n")
    java.chmod(0o755)
    (home / "release").write_text('JAVA_VERSION="1.8.0_402"\n')
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert kafka_dist.java_problem() == (
        f"{java} is Java 8; Apache Kafka {kafka_dist.KAFKA_VERSION} needs Java 17+"
    )
