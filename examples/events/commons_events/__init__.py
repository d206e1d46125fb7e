"""Kafka events: a keyed JSON publisher and an at-least-once processor with a dead-letter topic."""

from commons_events.events import Event, EventProcessor, EventPublisher, PublishError

__all__ = ["Event", "EventProcessor", "EventPublisher", "PublishError"]
