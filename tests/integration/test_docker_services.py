"""Kafka, AWS and MockServer integration suites on the docker backend, with local test images.

Same shape as ``test_docker_backend.py::test_integration_suite_passes_on_docker``: the suite
runs in a child pytest with ``--<svc>-backend=docker`` and must pass. Images come from
``containers/build.sh`` (no registry here): ``pytest-commons/kafka:4.1.1`` (Apache
Kafka from the pinned jars: every test runs) and ``pytest-commons/kafka:tansu`` (Tansu, so the
tests that require what Tansu lacks skip, keyed off the broker, not the backend),
``pytest-commons/localstack:moto`` (moto behind the LocalStack contract) and
``pytest-commons/mockserver:engine`` (pytest-commons' own engine) and
``pytest-commons/mockserver:5.15.0`` (the real MockServer, built from the pinned jar).
Without Docker or the images these skip; under CI they fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_docker_backend import _env, _missing

HERE = Path(__file__).parent
ROOT = HERE.parent.parent  # the rootdir: node ids (and --deselect prefixes) are relative to it
IMAGES = {
    "kafka": "pytest-commons/kafka:4.1.1",  # Apache Kafka: every test must pass
    "kafka-tansu": "pytest-commons/kafka:tansu",  # the requires(kafka=...) tests skip
    "aws": "pytest-commons/localstack:moto",
    "mockserver": "pytest-commons/mockserver:engine",
    "mockserver-java": "pytest-commons/mockserver:5.15.0",
    "rabbitmq": "pytest-commons/rabbitmq:3.10",
}
# skips that are right on these images; any other skip fails the test
EXPECTED_SKIPS = {
    "kafka": ("pins what Tansu answers; this broker is not Tansu",),
    "kafka-tansu": ("an Apache Kafka image (--kafka-image)",),
    "aws": ("the endpoint has no per-account reset",),
    "mockserver": (
        "a MockServer in a container cannot reach the host's 127.0.0.1",
        "restarts the shared engine process: local backend",
    ),
}
EXPECTED_SKIPS["mockserver-java"] = EXPECTED_SKIPS["mockserver"]
EXPECTED_SKIPS["rabbitmq"] = ("checks the local backend's node",)
# tests that assume the local backend's engine, not the docker contract (see docs/docker.md,
# "Known gaps"); each with the reason
DESELECT: dict[str, dict[str, str]] = {
    "kafka": {},
    "kafka-tansu": {},
    "aws": {
        # per-account reset and /_pytest_commons/reset-account exist on the local moto
        # launcher only; elsewhere tracked deletion leaves untracked fixed SQS names behind
        "test_tracked_deletion_removes_only_what_was_created": "calls the local reset endpoint",
        # the moto image does not apply LocalStack's "12-digit access key = account" rule
        "test_env_reaches_the_endpoint_from_a_subprocess": "needs the access-key account rule",
        "test_aws_environ_for_in_process_code": "needs the access-key account rule",
    },
    "mockserver": {},
    "mockserver-java": {},
    "rabbitmq": {},
}


@pytest.fixture(scope="module")
def present_images() -> set[str]:
    """Tags of the images the engine has; skips (fails under CI) without a Docker engine."""
    from pytest_commons.backends.docker import docker_engine_unreachable

    problem = docker_engine_unreachable()
    if problem:
        _missing(f"{problem}: start Docker (bash scripts/install-docker.sh)")
    return set(
        subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
    )


@pytest.mark.parametrize(
    "variant", ["kafka", "kafka-tansu", "aws", "mockserver", "mockserver-java", "rabbitmq"]
)
def test_integration_suite_passes_on_docker(
    present_images: set[str], variant: str, tmp_path: Path
) -> None:
    """kafka: Apache Kafka in the image built from the pinned jars; mockserver-java: the real
    MockServer 5.15.0 in the image built from the pinned jar."""
    service = variant.partition("-")[0]
    suite = HERE / f"test_{service}.py"
    if not suite.exists():
        pytest.skip(f"{suite.name} is not part of this tree")
    image = IMAGES[variant]
    if image not in present_images:
        _missing(f"image {image} is not built (bash containers/build.sh)")
    deselect = [
        arg
        for name in DESELECT[variant]
        for arg in ("--deselect", f"{suite.relative_to(ROOT).as_posix()}::{name}")
        if f"def {name}(" in suite.read_text()
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(suite),
            "-q",
            "-rsfE",  # the short summary names what failed: the output is cut to its end
            "-p",
            "no:cacheprovider",
            f"--{service}-backend=docker",
            # on Tansu the tests that require what it lacks skip (they fail under "fail")
            "--services-missing=skip" if variant == "kafka-tansu" else "--services-missing=fail",
            f"--basetemp={tmp_path}/bt",
            *deselect,
        ],
        capture_output=True,
        text=True,
        env=_env({f"PYTEST_COMMONS_{service.upper()}_IMAGE": image}),
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    assert re.search(rf"^{service:<11} docker ", out, re.M), out[-2000:]
    assert " passed" in out.splitlines()[-1], out[-2000:]
    unexpected = [
        line
        for line in out.splitlines()
        if line.startswith("SKIPPED")
        and not any(reason in line for reason in EXPECTED_SKIPS[variant])
    ]
    assert not unexpected, "\n".join(unexpected)


def test_kafka_on_the_tansu_image_is_treated_as_tansu(
    present_images: set[str], pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    """``@kafka_requires`` and ``Kafka.supports`` key off the broker: Tansu in a container
    lacks the same features as the local Tansu (what the deselected test should say)."""
    image = IMAGES["kafka-tansu"]
    if image not in present_images:
        _missing(f"image {image} is not built (bash containers/build.sh)")
    clean_env.setenv("PYTEST_COMMONS_KAFKA_IMAGE", image)
    pytester.makepyfile("""
        from pytest_commons.services.kafka.client import FEATURES, kafka_requires

        def test_flavour(kafka, kafka_service):
            assert kafka_service.backend == "docker"
            assert kafka.flavour == "tansu"
            assert not any(kafka.supports(f) for f in FEATURES)

        @kafka_requires("create_partitions")
        def test_skipped(kafka):
            raise AssertionError("must not run on Tansu")
    """)
    result = pytester.runpytest_subprocess(
        "--kafka-backend=docker", "-p", "no:cacheprovider", "-rs"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*kafka: create_partitions: Tansu 0.6 does not support*"])
