"""An async SQLAlchemy 2.0 repository that runs unchanged on PostgreSQL, MySQL and SQLite."""

from commons_rdbms.models import Base, Customer
from commons_rdbms.repository import CustomerRepository, Page

__all__ = ["Base", "Customer", "CustomerRepository", "Page"]
