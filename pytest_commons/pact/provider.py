"""The provider side: replay one interaction of a pact against the running application."""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_commons.pact._files import Interaction

StateHandler = Callable[[dict[str, Any]], object]


class ProviderInteraction:
    """One interaction of a consumer's pact, handed to a ``pact_provider`` test as
    ``pact_interaction``. ``verify()`` replays it against the provider."""

    def __init__(self, interaction: Interaction) -> None:
        self.interaction = interaction

    @property
    def description(self) -> str:
        return self.interaction.description

    @property
    def consumer(self) -> str:
        return self.interaction.consumer

    @property
    def provider(self) -> str:
        return self.interaction.provider

    @property
    def states(self) -> list[dict[str, Any]]:
        return self.interaction.states

    def __repr__(self) -> str:
        return f"<pact interaction {self.interaction.label}>"

    def verify(
        self,
        url: str,
        states: Mapping[str, StateHandler] | None = None,
        *,
        teardown: Mapping[str, StateHandler] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Replay this interaction against the provider at ``url``.

        ``states`` maps each provider state the interaction names to a function called with the
        state's parameters before the request (set up the data, e.g. with the suite's factories
        on the test's own database); ``teardown`` likewise after it. A state without a handler,
        a provider that does not answer, or a mismatch fails the test naming the interaction;
        the mismatch shows Pact's own text.
        """
        label = self.interaction.label
        states = dict(states or {})
        missing = [s["name"] for s in self.states if s["name"] not in states]
        if missing:
            known = ", ".join(repr(k) for k in sorted(states)) or "none"
            pytest.fail(
                f"pytest-commons: provider state {missing[0]!r} of {label} has no handler "
                f"(handlers given: {known}); pass it in states={{...}}",
                pytrace=False,
            )
        host = _check_reachable(url, label, timeout)
        errors: list[BaseException] = []

        def dispatch(state: str, action: str, parameters: dict[str, Any] | None) -> None:
            table = states if action == "setup" else dict(teardown or {})
            handler = table.get(state)
            if handler is None:
                return
            try:
                handler(dict(parameters or {}))
            except BaseException as exc:
                errors.append(exc)
                raise

        import pact

        with tempfile.TemporaryDirectory(prefix="commons-pact-") as tmp:
            source = Path(tmp) / "interaction.json"
            source.write_text(json.dumps(self.interaction.as_pact()), encoding="utf-8")
            verifier = (
                pact.Verifier(self.provider, host=host)
                .add_transport(url=url)
                .add_source(source)
                .state_handler(dispatch, teardown=True)
                .set_request_timeout(int(timeout * 1000))
                .set_coloured_output(enabled=False)
            )
            for name, value in (headers or {}).items():
                verifier.add_custom_header(name, value)
            failure: Exception | None = None
            try:
                verifier.verify()
            except Exception as exc:
                failure = exc
            output = verifier.output(strip_ansi=True).strip()
        if errors:
            raise errors[0]
        if failure is not None:
            pytest.fail(f"pact: {label} failed verification at {url}:\n{output}", pytrace=False)


def _check_reachable(url: str, label: str, timeout: float) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=min(timeout, 2.0)).close()
    except OSError as exc:
        pytest.fail(
            f"pytest-commons: the provider for {label} is not running at {url} "
            f"({exc.strerror or exc}); start it first (e.g. with the live-server fixture)",
            pytrace=False,
        )
    return host
