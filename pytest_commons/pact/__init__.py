"""Consumer-driven contract testing with Pact (pact-python 4), wired to the suite's services.

The fixtures and the ``pact_provider`` marker come with the plugin; see docs/pact.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_commons.pact._files import Interaction, PactFileError
from pytest_commons.pact.mockserver import load_pact_into_mockserver

if TYPE_CHECKING:
    from pytest_commons.pact.provider import ProviderInteraction

__all__ = [
    "Interaction",
    "PactFileError",
    "ProviderInteraction",
    "load_pact_into_mockserver",
]


def __getattr__(name: str) -> Any:  # the provider module imports pytest only: cheap, but lazy
    if name == "ProviderInteraction":
        from pytest_commons.pact import provider

        return getattr(provider, name)
    raise AttributeError(name)
