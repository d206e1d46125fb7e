"""The ``faker`` fixture, in a module of its own so the plugin can register it late.

Faker ships its own pytest plugin with a ``faker`` fixture (seeded with 0 in every test). Among
plugins the one registered last wins, so :mod:`pytest_commons.data.fixtures` registers this
module again in ``pytest_configure``, after every entry-point plugin, to make the seeded
fixture the one tests get. Importing this module does not import faker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_commons.data import seeding
from pytest_commons.plugin import options as _options

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

    Faker's own conventions win where a test suite uses them: a ``faker_seed`` fixture sets
    the seed, a ``faker_locale`` (or session-scoped ``faker_session_locale``) fixture the
    locale — as with Faker's plugin, when the test's closure has them (autouse or requested).
    Scope: function. Cost: ≈0.1 ms (the Faker instance is built once per locale and reseeded).
    """
    names = request.fixturenames
    if "faker_seed" in names:
        seed = seeding.parse_seed(request.getfixturevalue("faker_seed"))
    else:
        seed = test_seed(request)
    if "faker_locale" in names:
        locale = _locale_tuple(request.getfixturevalue("faker_locale"))
    elif "faker_session_locale" in names:
        locale = _locale_tuple(request.getfixturevalue("faker_session_locale"))
    else:
        locale = seeding.locales(_options.get(request.config, "faker_locale"))
    fake = seeding.seeded_faker(locale, seed)
    seeding.reseed_libraries(fake, seed)
    return fake


def _locale_tuple(value: object) -> tuple[str, ...]:
    """Faker's fixtures give a locale as a string or a list of strings."""
    if isinstance(value, str):
        return seeding.locales(value)
    return tuple(str(v) for v in value)  # type: ignore[attr-defined]
