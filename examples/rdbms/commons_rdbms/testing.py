"""Test helpers the layer ships to its users: factory_boy factories for its models."""

# factory_boy's declarations are untyped
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from typing import Any

from factory.base import DictFactory
from factory.declarations import Sequence
from factory.faker import Faker

from commons_rdbms.models import Customer


class CustomerRowFactory(DictFactory):
    """Rows for ``CustomerRepository.bulk_add`` (unique emails, realistic names)."""

    email = Sequence(lambda n: f"customer{n}@example.com")
    name = Faker("name")
    active = Faker("pybool")
    balance = Faker("pydecimal", left_digits=6, right_digits=2, positive=True)


def customer(**overrides: Any) -> Customer:
    """A new, unsaved :class:`Customer` (``overrides`` win over generated values)."""
    row: dict[str, Any] = CustomerRowFactory.build(**overrides)
    return Customer(**row)
