"""The run config and the services' configs: resolved once, frozen, typed (no servers)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from pytest_commons.core.config import RunConfig, ServiceConfig
from pytest_commons.plugin.options import OPTIONS
from pytest_commons.plugin.settings import Settings
from pytest_commons.services import SERVICES
from pytest_commons.services.kafka import KafkaConfig
from pytest_commons.services.kafka.spec import KafkaSpec
from pytest_commons.services.postgres import PostgresConfig


def _config(**values: str) -> RunConfig:
    return Settings(values.get).run_config()


def test_every_service_has_a_config_of_its_own_class() -> None:
    config = _config()
    assert set(config.services) == set(SERVICES)
    for name, meta in SERVICES.items():
        assert type(config.service(name)) is meta.config
        # one field per option of the service's own (named without the "<name>_" prefix)
        own = {f.name for f in dataclasses.fields(meta.config)} - {
            f.name for f in dataclasses.fields(ServiceConfig)
        }
        assert {f"{name}_{field}" for field in own} == {o.key for o in meta.options}


def test_the_configs_are_frozen() -> None:
    config = _config(kafka_engine="tansu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.start_timeout = 1.0  # type: ignore[misc]
    kafka = config.service("kafka")
    with pytest.raises(dataclasses.FrozenInstanceError):
        kafka.engine = "apache"  # type: ignore[misc]
    with pytest.raises(TypeError):  # the mappings are read-only views
        config.services["kafka"] = kafka  # type: ignore[index]
    with pytest.raises(TypeError):
        config.origin.values["kafka_engine"] = "apache"  # type: ignore[index]


def test_values_are_typed_with_the_options_defaults() -> None:
    config = _config(
        service_start_timeout="7",
        backend_order="local, docker",
        kafka_engine="tansu",
        postgres_bindir="/opt/pg/bin",
        redis_backend="local",
        keep_failed="true",
    )
    assert config.start_timeout == 7.0
    assert config.backend_order == ("local", "docker")
    assert config.reuse is True  # --keep-failed keeps the servers too
    kafka = config.service("kafka")
    assert isinstance(kafka, KafkaConfig)
    assert (kafka.engine, kafka.isolation, kafka.tansu_path) == ("tansu", "topic", None)
    assert kafka.image == SERVICES["kafka"].default_image
    assert kafka.explicit_image is None
    postgres = config.service("postgres")
    assert isinstance(postgres, PostgresConfig)
    assert postgres.bindir == "/opt/pg/bin"
    assert config.service("redis").backend == "local"
    assert config.service("aws").region == "us-east-1"  # type: ignore[attr-defined]
    # a bad timeout falls back as before (configure has refused it already in a test run)
    assert _config(service_start_timeout="inf").start_timeout == 60.0
    assert _config().backend_order == ("external", "docker", "local")


def test_a_spec_reads_its_own_typed_config() -> None:
    config = _config(kafka_engine="tansu", kafka_isolation="broker")
    spec = KafkaSpec(config)
    assert spec.run_config is config
    assert spec.config is config.service("kafka")
    assert spec.config.engine == "tansu"
    assert spec.per_worker is True


def test_sources_stay_for_error_messages() -> None:
    sources = {
        "kafka_tansu_path": "--kafka-tansu-path",
        "redis_image": "$PYTEST_COMMONS_REDIS_IMAGE",
    }
    values = {"kafka_tansu_path": "/nowhere/tansu", "redis_image": "mine/redis:7"}
    settings = Settings(values.get, lambda key: sources.get(key, "default"))
    config = settings.run_config()
    kafka = config.service("kafka")
    assert kafka.named("kafka_tansu_path") == (
        "kafka_tansu_path='/nowhere/tansu' (from --kafka-tansu-path)"
    )
    assert config.source("commons_cache_dir") == "default"
    assert config.service("redis").explicit_image == "mine/redis:7"
    why = KafkaSpec(config).tansu_binary()[1]
    assert (
        why
        == "kafka_tansu_path='/nowhere/tansu' (from --kafka-tansu-path) is not an executable file"
    )


def test_the_reuse_fingerprint_is_the_services_raw_values() -> None:
    config = _config(redis_isolation="server", backend_order="local")
    expected = sorted(
        [
            *(
                (key, "server" if key == "redis_isolation" else None)
                for key in OPTIONS
                if key.startswith("redis_")
            ),
            ("backend_order", "local"),
            ("commons_server_user", None),
        ]
    )
    assert config.fingerprint("redis") == expected


def test_the_cli_reads_the_ini_file_into_the_typed_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_commons.cli import resolved_settings

    for name in list(os.environ):
        if name.startswith("PYTEST_COMMONS_") or name == "PYTEST_ADDOPTS":
            monkeypatch.delenv(name)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nkafka_engine = tansu\nservice_start_timeout = 12\n"
        f"commons_cache_dir = {tmp_path / 'cache'}\n"
    )
    monkeypatch.chdir(tmp_path)
    config = resolved_settings().run_config()
    assert config.service("kafka").engine == "tansu"
    assert config.service("kafka").source("kafka_engine") == "ini kafka_engine in pytest.ini"
    assert config.start_timeout == 12.0
    assert config.cache_dir() == tmp_path / "cache"


def test_a_catalogue_entry_names_its_modules_relative_to_its_package() -> None:
    from pytest_commons.core.config import ServiceMeta

    meta = ServiceMeta(name="toy", title="Toy", spec="ToySpec", report="report:describe")
    assert meta.spec == "pytest_commons.services.toy.spec:ToySpec"
    assert meta.fixtures == ("pytest_commons.services.toy.fixtures",)
    assert meta.report == "pytest_commons.services.toy.report:describe"
    assert meta.backends == ("external", "docker", "local")
    assert meta.marker_help == "the test uses the Toy service (added automatically)."
    assert meta.extra == "toy"
    # a dotted module is taken as it is (a service defined outside the package)
    outside = ServiceMeta(
        name="toy", title="Toy", spec="tests.toy:ToySpec", fixtures=("tests.toy_fixtures",)
    )
    assert (outside.spec, outside.fixtures, outside.report) == (
        "tests.toy:ToySpec",
        ("tests.toy_fixtures",),
        "",
    )
    # the registered services resolve to modules and objects that exist
    import importlib

    for registered in SERVICES.values():
        module, name = registered.spec.split(":")
        assert hasattr(importlib.import_module(module), name)
        for fixtures in registered.fixtures:
            importlib.import_module(fixtures)
