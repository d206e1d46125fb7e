"""The ``faker`` fixture, in a module of its own so the plugin can register it late.

Faker ships its own pytest plugin with a ``faker`` fixture (seeded with 0 in every test). Among
plugins the one registered last wins, so :mod:`pytest_commons.fixtures.data` registers this
module again in ``pytest_configure``, after every entry-point plugin, to make the seeded
fixture the one tests get. Importing this module does not import faker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_commons import _options
from pytest_commons.data import seeding

if TYPE_CHECKING:
    from faker import Faker

SEED_KEY = pytest.StashKey[int]()


def run_seed(config: pytest.Config) -> int:
    """The run seed (set in ``pytest_configure``; the same in every xdist worker)."""
    return config.stash[SEED_KEY]


def test_seed(request: pytest.FixtureRequest) -> int:
    """This test's seed, derived from the run seed and the test's node id."""
    return seeding.derive_seed(run_seed(request.config), request.node.nodeid)


@pytest.fixture
def faker(request: pytest.FixtureRequest) -> Faker:
    """A :class:`faker.Faker` seeded for this test from the run seed and the test's node id.

    The same ``--commons-seed`` gives every test the same values, whatever runs before it and
    on whichever xdist worker; the run seed is printed in the header and in every failure
    report. Locale from ``--faker-locale`` (comma separated for several; default en_US).
    factory-boy's ``factory.Faker`` declarations are reseeded with the same seed.
    Scope: function. Cost: ≈0.1 ms (the Faker instance is built once per locale and reseeded).
    """
    seed = test_seed(request)
    fake = seeding.seeded_faker(seeding.locales(_options.get(request.config, "faker_locale")), seed)
    seeding.reseed_libraries(fake, seed)
    return fake
