"""An in-process engine that speaks MockServer's REST API.

The official ``mockserver-client`` works against it unchanged::

    from mockserver import MockServerClient
    from pytest_commons.engines.mockserver import MockServerEngine

    with MockServerEngine() as engine:
        client = MockServerClient(engine.host, engine.port)

See ``docs/mockserver-engine.md`` for what is supported.
"""

from .model import ModelError
from .server import MockServerEngine
from .state import MockServerState

__all__ = ["MockServerEngine", "MockServerState", "ModelError"]
