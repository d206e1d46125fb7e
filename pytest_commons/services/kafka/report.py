"""What a failing test's report says about Kafka (see :mod:`pytest_commons.plugin.report`)."""

from __future__ import annotations

from typing import Any


def describe(handle: Any, funcargs: dict[str, Any], kept: bool) -> list[str]:
    """The topics the test touched with their record counts, and its consumer groups."""
    view = funcargs.get("kafka")
    if view is None:
        return []
    topics = view.touched_topics()
    state = "kept (--keep-failed)" if kept else "deleted after the test; --keep-failed keeps them"
    if not topics:
        return ["topics: none made or touched by the test"]
    from confluent_kafka import Consumer, TopicPartition

    lines = [f"topics, {state}:"]
    consumer = Consumer(
        {
            "bootstrap.servers": handle.info.bootstrap_servers,
            "group.id": "pytest-commons-report",
            "enable.auto.commit": False,
            "socket.timeout.ms": 2000,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=2)
        for topic in topics:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                lines.append(f"  {topic}: not on the broker")
                continue
            records = 0
            for partition in found.partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=2
                )
                records += max(high - low, 0)
            lines.append(f"  {topic}: {len(found.partitions)} partition(s), {records} record(s)")
    finally:
        consumer.close()
    if "tansu" in str(handle.version).lower():
        lines.append(
            "  (counts from the high watermark, which Tansu reports too low after a batch of "
            "several records: docs/parity.md)"
        )
    if view.group_ids:
        lines.append(f"consumer groups: {', '.join(view.group_ids)}")
    return lines
