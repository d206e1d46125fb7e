"""The consumer side's ``Pact``: pact-python's, with its mock server on loopback."""

from __future__ import annotations

from typing import Any

import pact


class CommonsPact(pact.Pact):
    """pact-python's ``Pact`` (specification V4) whose ``serve()`` binds 127.0.0.1 by default.

    Everything else is pact-python's own API: ``upon_receiving``, ``given``, ``with_request``,
    ``will_respond_with``, ``with_body``, ``pact.match`` matchers.
    """

    def serve(self, addr: str = "127.0.0.1", port: int = 0, *args: Any, **kwargs: Any) -> Any:
        if addr not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(
                f"pytest-commons: the pact mock server binds loopback only, not {addr!r}"
            )
        return super().serve(addr, port, *args, **kwargs)

    def has_interactions(self) -> bool:
        """Whether the test declared any interaction (an empty pact writes no file)."""
        return next(iter(self.interactions("All")), None) is not None
