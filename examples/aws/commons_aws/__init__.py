"""S3 object storage (streaming multipart upload, presigned URLs) and an SQS consumer
(long polling, concurrent handlers, dead-lettering through the queue's redrive policy)."""

from commons_aws.queue import Message, SqsConsumer, create_queue_with_dlq
from commons_aws.storage import ObjectStore

__all__ = ["Message", "ObjectStore", "SqsConsumer", "create_queue_with_dlq"]
