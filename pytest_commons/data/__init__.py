"""Data tools for tests: seeded fake data, factories, seed files, snapshots, property strategies.

Nothing heavy is imported here: :mod:`faker`, :mod:`factory`, :mod:`polyfactory`, :mod:`syrupy`,
:mod:`hypothesis` and :mod:`yaml` are imported only by the functions (or the submodules such as
:mod:`pytest_commons.data.strategies`) that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# the names resolve on first use (PEP 562): the plugin loads this package at every pytest start
_LAZY = {
    "factory_fixture": "factories",
    "register_factory": "factories",
    "isolated_example": "isolation",
    "SeedDataError": "seed_data",
    "load_seed_file": "seed_data",
    "Masks": "snapshots",
    "VolatileValueError": "snapshots",
    "http_exchanges": "snapshots",
    "kafka_messages": "snapshots",
    "mask_volatile": "snapshots",
    "snapshot_table": "snapshots",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
