"""An in-process engine that speaks MockServer's REST API.

The official ``mockserver-client`` works against it unchanged::

    from pytest_commons.services.mockserver.engine import MockServerEngine
    from pytest_commons.services.mockserver.spec import open_client

    with MockServerEngine() as engine, open_client(engine.host, engine.port) as client:
        ...

See ``docs/mockserver-engine.md`` for what is supported.
"""

from .model import ModelError
from .server import MockServerEngine
from .state import MockServerState

__all__ = ["MockServerEngine", "MockServerState", "ModelError"]
