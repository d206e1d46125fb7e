from collections import defaultdict

import pytest
from pytest_commons.kafka import Kafka

from commons_events import Event, EventProcessor, EventPublisher


class Crash(BaseException):
    """The process dies mid-handling (not an error the processor may catch)."""


def test_events_of_one_key_keep_their_order(
    kafka: Kafka, orders: str, publisher: EventPublisher, dlq_publisher: EventPublisher
) -> None:
    keys = [f"order-{i}" for i in range(6)]
    for seq in range(10):  # interleaved: order-0 #0, order-1 #0, ..., order-0 #1, ...
        for key in keys:
            publisher.publish(key, {"order": key, "seq": seq})
    publisher.flush()

    seen: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)

    def record(event: Event) -> None:
        seen[event.key].append(event.value["seq"])
        partitions[event.key].add(event.partition)

    processor = EventProcessor(kafka.consumer_config(), orders, record, dead_letters=dlq_publisher)
    processor.run(until=lambda: processor.processed == 60)
    processor.close()

    assert {key: seqs for key, seqs in seen.items()} == {key: list(range(10)) for key in keys}
    assert all(len(p) == 1 for p in partitions.values())  # one key, one partition
    assert len(set().union(*partitions.values())) > 1  # and the keys did spread out


def test_a_crash_before_commit_redelivers_the_event(
    kafka: Kafka, orders: str, publisher: EventPublisher, dlq_publisher: EventPublisher
) -> None:
    for n in range(10):
        publisher.publish("account-1", {"n": n})
    publisher.flush()
    handled: list[int] = []

    def crash_on_6(event: Event) -> None:
        if event.value["n"] == 6:
            raise Crash
        handled.append(event.value["n"])

    group = kafka.group_id("billing")
    first = EventProcessor(
        kafka.consumer_config(group), orders, crash_on_6, dead_letters=dlq_publisher
    )
    with pytest.raises(Crash):
        first.run(until=lambda: False)
    first.close()  # without committing event 6
    assert handled == [0, 1, 2, 3, 4, 5]

    second = EventProcessor(
        kafka.consumer_config(group),
        orders,
        lambda e: handled.append(e.value["n"]),
        dead_letters=dlq_publisher,
    )
    second.run(until=lambda: len(handled) == 10)
    second.close()
    assert handled == list(range(10))  # resumed at 6: nothing lost, nothing done twice


def test_a_failing_event_is_dead_lettered_and_the_rest_go_on(
    kafka: Kafka,
    orders: str,
    dead_letters: str,
    publisher: EventPublisher,
    dlq_publisher: EventPublisher,
) -> None:
    for event in ({"sku": "a"}, {"sku": None}, {"sku": "b"}):
        publisher.publish("cart-9", event)
    publisher.flush()
    calls: list[object] = []

    def reserve(event: Event) -> None:
        calls.append(event.value["sku"])
        if event.value["sku"] is None:
            raise ValueError("sku missing")

    processor = EventProcessor(
        kafka.consumer_config(), orders, reserve, dead_letters=dlq_publisher, attempts=3
    )
    processor.run(until=lambda: processor.processed + processor.dead_lettered == 3)
    processor.close()

    assert calls == ["a", None, None, None, "b"]
    assert (processor.processed, processor.dead_lettered) == (2, 1)
    [dead] = kafka.consume(dead_letters, 1)
    assert dead.key() == b"cart-9"
    assert dead.value() == b'{"sku":null}'
    headers = {k: v.decode() for k, v in dead.headers()}
    assert headers["error"] == "ValueError: sku missing"
    assert headers["source"].startswith(f"{orders}/")
