import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from pytest_commons.aws import Aws

from commons_aws import Message, SqsConsumer, create_queue_with_dlq


@pytest.fixture
def queues(aws: Aws) -> tuple[str, str]:
    """A work queue whose messages go to its dead-letter queue after 2 receives."""
    return create_queue_with_dlq(aws.client("sqs"), aws.name("orders"), max_receive_count=2)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def send(aws: Aws, url: str, *bodies: str) -> None:
    for body in bodies:
        aws.client("sqs").send_message(QueueUrl=url, MessageBody=body)


def test_long_polling_returns_as_soon_as_a_message_arrives(
    aws: Aws, queues: tuple[str, str]
) -> None:
    url, _ = queues
    got: list[str] = []
    consumer = SqsConsumer(aws.client("sqs"), url, lambda m: got.append(m.body), wait_seconds=10)
    poller = threading.Thread(target=consumer.poll_once)
    started = time.monotonic()
    poller.start()
    send(aws, url, "hello")
    poller.join(timeout=15)

    assert got == ["hello"]
    assert time.monotonic() - started < 10  # woke up on arrival, not at the end of the wait
    consumer.close()


def test_handlers_run_concurrently_and_messages_are_deleted(
    aws: Aws, queues: tuple[str, str], stop: threading.Event
) -> None:
    url, _ = queues
    together = threading.Barrier(4, timeout=10)  # only passes if 4 handlers run at once
    seen: list[str] = []

    def handle(message: Message) -> None:
        together.wait()
        seen.append(message.body)

    send(aws, url, *(f"order-{i}" for i in range(4)))
    consumer = SqsConsumer(aws.client("sqs"), url, handle, concurrency=4)
    deadline = time.monotonic() + 20
    while len(seen) < 4 and time.monotonic() < deadline:
        consumer.poll_once()
    consumer.close()

    assert sorted(seen) == [f"order-{i}" for i in range(4)]
    assert (consumer.handled, consumer.failed) == (4, 0)
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_poison_message_is_retried_then_dead_lettered(
    aws: Aws, queues: tuple[str, str], stop: threading.Event
) -> None:
    url, dlq = queues
    attempts: Counter[str] = Counter()

    def handle(message: Message) -> None:
        attempts[message.body] += 1
        if message.body == "poison":
            raise ValueError("cannot parse")

    send(aws, url, "good-1", "poison", "good-2")
    consumer = SqsConsumer(aws.client("sqs"), url, handle, wait_seconds=1)
    worker = threading.Thread(target=consumer.run, args=(stop,))
    worker.start()

    dead = aws.receive(dlq, 1, timeout=20)  # waits (with a deadline) for the redrive
    stop.set()
    worker.join(timeout=15)
    consumer.close()

    assert [m["Body"] for m in dead] == ["poison"]
    assert attempts == {"good-1": 1, "good-2": 1, "poison": 2}  # maxReceiveCount
