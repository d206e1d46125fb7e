"""Data tools for tests: seeded fake data, factories, seed files, snapshots, property strategies.

Nothing heavy is imported here: :mod:`faker`, :mod:`factory`, :mod:`polyfactory`, :mod:`syrupy`,
:mod:`hypothesis` and :mod:`yaml` are imported only by the functions (or the submodules such as
:mod:`pytest_commons.data.strategies`) that need them.
"""

from __future__ import annotations

from pytest_commons.data.factories import factory_fixture, register_factory
from pytest_commons.data.isolation import isolated_example
from pytest_commons.data.seed_data import SeedDataError, load_seed_file
from pytest_commons.data.snapshots import (
    Masks,
    VolatileValueError,
    http_exchanges,
    kafka_messages,
    mask_volatile,
    snapshot_table,
)

__all__ = [
    "Masks",
    "SeedDataError",
    "VolatileValueError",
    "factory_fixture",
    "http_exchanges",
    "isolated_example",
    "kafka_messages",
    "load_seed_file",
    "mask_volatile",
    "register_factory",
    "snapshot_table",
]
