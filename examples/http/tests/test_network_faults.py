"""The http layer behind a fault proxy: the network between the client and MockServer is slow or
drops connections, for this test only (``faults``, see docs/faults.md)."""

import httpx
import pytest
from mockserver import HttpRequest, HttpResponse, MockServerClient, VerificationTimes
from pytest_commons.faults import Faults

from commons_http import ApiClient, CircuitOpen, Retry

ORDER = HttpRequest(method="GET", path="/v1/orders/42")
OK = HttpResponse(status_code=200, body={"id": "42"})


def test_latency_on_the_network_times_out_each_attempt_then_gives_up(
    mockserver: MockServerClient, faults: Faults
) -> None:
    mockserver.when(ORDER).respond(OK)
    upstream = faults.proxy("mockserver")
    with ApiClient(upstream.url, timeout=0.2, retry=Retry(attempts=3, initial=0.01)) as api:
        assert api.get_json("/v1/orders/42") == {"id": "42"}  # no fault: answered
        # answers now arrive after the client gave up
        with upstream.latency(1000, jitter=50), pytest.raises(httpx.ReadTimeout):
            api.get_json("/v1/orders/42")
        assert api.get_json("/v1/orders/42") == {"id": "42"}  # fault removed: recovers
    mockserver.verify(ORDER, VerificationTimes.exactly(1 + 3 + 1))  # every attempt arrived


def test_resets_open_the_circuit_breaker(mockserver: MockServerClient, faults: Faults) -> None:
    mockserver.when(ORDER).respond(OK)
    upstream = faults.proxy("mockserver")
    api = ApiClient(upstream.url, timeout=2, retry=Retry(attempts=2, initial=0.01), fail_max=2)
    with api:
        upstream.reset_peer()  # every connection is reset when the answer comes back
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                api.get_json("/v1/orders/42")
        upstream.down()  # calls that reach the network now would be refused, not CircuitOpen
        with pytest.raises(CircuitOpen):
            api.get_json("/v1/orders/42")  # the breaker is open: not even tried
    mockserver.verify(ORDER, VerificationTimes.exactly(2 * 2))  # 2 calls x 2 attempts, no more
