"""The run seed and the per-test seeds derived from it.

One run seed per run (``--commons-seed``/ini/env, random by default), shared by every xdist
worker; each test derives its own seed from the run seed and its node id, so a test's data does
not depend on which other tests ran before it, or on which worker ran it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faker import Faker

_FAKERS: dict[tuple[str, ...], Faker] = {}


def new_run_seed() -> int:
    """A random run seed (a 9-digit number, easy to copy from a report)."""
    return 100_000_000 + random.SystemRandom().randrange(900_000_000)


def parse_seed(raw: str | int) -> int:
    """An int seed from the option value: decimal digits as is, any other text hashed."""
    if isinstance(raw, int):
        return raw
    text = raw.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return derive_seed(0, text)


def derive_seed(run_seed: int, nodeid: str) -> int:
    """A stable 64-bit seed for one test: the same run seed and node id give the same seed."""
    import hashlib  # here: the plugin imports this module at every pytest start

    digest = hashlib.sha256(f"{run_seed}\x00{nodeid}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def locales(raw: str | None) -> tuple[str, ...]:
    """``"en_US,de_DE"`` → ``("en_US", "de_DE")``."""
    parts = tuple(p.strip() for p in (raw or "en_US").split(",") if p.strip())
    return parts or ("en_US",)


def seeded_faker(locale: tuple[str, ...], seed: int) -> Faker:
    """A Faker for ``locale`` (cached: building one costs milliseconds), reseeded with ``seed``."""
    fake = _FAKERS.get(locale)
    if fake is None:
        from faker import Faker

        fake = Faker(list(locale))
        _FAKERS[locale] = fake
    fake.seed_instance(seed)
    fake.unique.clear()
    return fake


def reseed_libraries(fake: Any, seed: int) -> None:
    """Point factory-boy at the same seed, if it is installed (and already imported)."""
    import sys

    if "factory" in sys.modules:
        import factory.random

        factory.random.reseed_random(seed)  # type: ignore[no-untyped-call]
