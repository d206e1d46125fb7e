"""A small Celery-style task queue on kombu: ``enqueue(name, **kwargs)``, then a worker runs
the handlers; a task that fails ``attempts`` times goes to the ``<queue>.failed`` queue with
its error, the others are acknowledged once done (a crash before that redelivers them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kombu import Connection, Exchange, Queue


class TaskQueue:
    def __init__(self, connection: Connection, name: str = "tasks", attempts: int = 3) -> None:
        self.connection, self.attempts = connection, attempts
        exchange = Exchange(name, type="direct")
        self.queue = Queue(name, exchange, routing_key=name)
        self.failed = Queue(f"{name}.failed", exchange, routing_key=f"{name}.failed")
        self.producer = connection.Producer(serializer="json")

    def enqueue(self, task: str, attempt: int = 1, **kwargs: Any) -> None:
        self.producer.publish(
            {"task": task, "kwargs": kwargs, "attempt": attempt},
            exchange=self.queue.exchange,
            routing_key=self.queue.routing_key,
            declare=[self.queue, self.failed],
            retry=True,
        )

    def work(self, handlers: dict[str, Callable[..., Any]], limit: int, timeout: float = 10) -> int:
        """Run tasks until ``limit`` were handled (done or failed for good); returns how many."""
        handled = 0

        def on_message(body: dict[str, Any], message: Any) -> None:
            nonlocal handled
            try:
                handlers[body["task"]](**body["kwargs"])
            except Exception as exc:
                if body["attempt"] < self.attempts:
                    self.enqueue(body["task"], body["attempt"] + 1, **body["kwargs"])
                else:
                    self.producer.publish(
                        {**body, "error": repr(exc)},
                        exchange=self.failed.exchange,
                        routing_key=self.failed.routing_key,
                        declare=[self.failed],
                    )
                    handled += 1
            else:
                handled += 1
            message.ack()

        with self.connection.Consumer(self.queue, callbacks=[on_message]):
            while handled < limit:
                self.connection.drain_events(timeout=timeout)
        return handled

    def failures(self, timeout: float = 5) -> list[dict[str, Any]]:
        simple = self.connection.SimpleQueue(self.failed)
        out: list[dict[str, Any]] = []
        try:
            while True:
                message = simple.get(block=True, timeout=timeout)
                out.append(message.payload)
                message.ack()
                timeout = 0.2  # the rest are already there
        except simple.Empty:
            return out
        finally:
            simple.close()
