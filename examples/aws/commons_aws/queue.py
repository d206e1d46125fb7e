"""An SQS consumer: long polling, a pool of concurrent handlers, delete after success.

A handler that raises leaves the message on the queue (visible again at once); the queue's
redrive policy moves it to the dead-letter queue after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    id: str
    body: str
    receive_count: int
    receipt_handle: str = field(repr=False)


def create_queue_with_dlq(
    sqs: Any, name: str, max_receive_count: int = 3, visibility_timeout: int = 30
) -> tuple[str, str]:
    """Create ``name`` and ``name-dlq`` wired by a redrive policy; returns both URLs."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    attributes = {"RedrivePolicy": json.dumps(policy), "VisibilityTimeout": str(visibility_timeout)}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return str(url), str(dlq_url)


class SqsConsumer:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Callable[[Message], None],
        *,
        concurrency: int = 4,
        wait_seconds: int = 1,
    ) -> None:
        self.sqs, self.queue_url, self.handler = sqs, queue_url, handler
        self.wait_seconds = wait_seconds
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="sqs-handler")
        self.concurrency = concurrency
        self.handled = self.failed = 0
        self._lock = threading.Lock()

    def poll_once(self) -> int:
        """One long poll (up to ``wait_seconds``), its messages handled concurrently; returns
        how many arrived."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, self.concurrency),
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = [
            Message(
                id=m["MessageId"],
                body=m["Body"],
                receive_count=int(m["Attributes"]["ApproximateReceiveCount"]),
                receipt_handle=m["ReceiptHandle"],
            )
            for m in response.get("Messages", [])
        ]
        list(self.pool.map(self._handle, messages))
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (checked between long polls)."""
        while not stop.is_set():
            self.poll_once()

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _handle(self, message: Message) -> None:
        try:
            self.handler(message)
        except Exception:
            with self._lock:
                self.failed += 1
            # visible again now: the next receive retries it (and counts toward the DLQ)
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
            )
            return
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle)
        with self._lock:
            self.handled += 1
