"""Test helpers the layer ships to its users: factory_boy factories for its models."""

from __future__ import annotations

from typing import Any

import factory

from commons_rdbms.models import Customer


class CustomerRowFactory(factory.DictFactory):  # type: ignore[misc]
    """Rows for ``CustomerRepository.bulk_add`` (unique emails, realistic names)."""

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    name = factory.Faker("name")
    active = factory.Faker("pybool")
    balance = factory.Faker("pydecimal", left_digits=6, right_digits=2, positive=True)


def customer(**overrides: Any) -> Customer:
    """A new, unsaved :class:`Customer` (``overrides`` win over generated values)."""
    return Customer(**{**CustomerRowFactory(), **overrides})
