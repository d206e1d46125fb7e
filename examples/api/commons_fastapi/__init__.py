"""The fastapi commons layer: an items API on PostgreSQL (SQLAlchemy async), a Redis cache,
events to Kafka, images in S3, prices from a partner API, and a GraphQL endpoint."""

from commons_fastapi.app import Services, app, create_app, get_services, get_session
from commons_fastapi.models import Base, Item

__all__ = ["Base", "Item", "Services", "app", "create_app", "get_services", "get_session"]
