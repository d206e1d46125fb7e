from collections.abc import Iterator
from typing import Any

import pytest

from commons_http import ApiClient, Retry


@pytest.fixture
def base_url(mockserver_service: Any) -> str:
    """Where MockServer listens: the upstream API our client calls."""
    info = mockserver_service.info
    return f"http://{info.host}:{info.port}"


@pytest.fixture
def api(base_url: str) -> Iterator[ApiClient]:
    """A client with fast backoff (10 ms, 20 ms, ...) so retry tests stay quick."""
    with ApiClient(base_url, timeout=2, retry=Retry(attempts=3, initial=0.01)) as client:
        yield client
