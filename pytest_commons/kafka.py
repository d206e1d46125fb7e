"""The public home of :class:`Kafka`, the view the ``kafka`` fixture hands out (a stable path).

The code lives in :mod:`pytest_commons.services.kafka.client`.
"""

from __future__ import annotations

from pytest_commons.services.kafka.client import (
    FEATURES,
    Kafka,
    KafkaWorker,
    kafka_requires,
    missing_feature,
)

__all__ = ["FEATURES", "Kafka", "KafkaWorker", "kafka_requires", "missing_feature"]
