import time

import httpx
import pytest
from mockserver import (
    Delay,
    HttpError,
    HttpRequest,
    HttpResponse,
    MockServerClient,
    Times,
    VerificationTimes,
)

from commons_http import ApiClient, ApiError, ApiKeyAuth, BearerAuth, CircuitOpen, Retry

ORDER = HttpRequest(method="GET", path="/v1/orders/42")
OK = HttpResponse(status_code=200, body={"id": "42"})


def test_transient_errors_are_retried_with_backoff(
    mockserver: MockServerClient, api: ApiClient
) -> None:
    mockserver.when(ORDER, Times(remaining_times=2)).respond(HttpResponse(status_code=503))
    mockserver.when(ORDER).respond(OK)

    assert api.get_json("/v1/orders/42") == {"id": "42"}
    mockserver.verify(ORDER, VerificationTimes.exactly(3))


def test_retries_give_up_after_the_last_attempt(
    mockserver: MockServerClient, api: ApiClient
) -> None:
    mockserver.when(ORDER).respond(HttpResponse(status_code=502, body="bad gateway"))

    with pytest.raises(ApiError) as failure:
        api.get_json("/v1/orders/42")
    assert failure.value.status == 502
    mockserver.verify(ORDER, VerificationTimes.exactly(3))


def test_client_errors_and_unsafe_posts_are_not_retried(
    mockserver: MockServerClient, api: ApiClient
) -> None:
    create = HttpRequest(method="POST", path="/v1/orders")
    mockserver.when(create).respond(HttpResponse(status_code=503))
    mockserver.when(ORDER).respond(HttpResponse(status_code=404))

    with pytest.raises(ApiError):
        api.post_json("/v1/orders", {"customer_id": 1})
    with pytest.raises(ApiError) as failure:
        api.get_json("/v1/orders/42")
    assert failure.value.status == 404
    mockserver.verify(create, VerificationTimes.exactly(1))
    mockserver.verify(ORDER, VerificationTimes.exactly(1))


def test_a_slow_answer_times_out_and_is_retried(
    mockserver: MockServerClient, base_url: str
) -> None:
    slow = HttpResponse(status_code=200, body={"id": "42"}, delay=Delay(value=1500))
    mockserver.when(ORDER, Times(remaining_times=1)).respond(slow)
    mockserver.when(ORDER).respond(OK)

    with ApiClient(base_url, timeout=0.3, retry=Retry(attempts=2, initial=0.01)) as api:
        started = time.monotonic()
        assert api.get_json("/v1/orders/42") == {"id": "42"}
        assert time.monotonic() - started < 1.5  # did not wait for the slow answer

    mockserver.verify(ORDER, VerificationTimes.exactly(2))


def test_timeouts_on_every_attempt_raise(mockserver: MockServerClient, base_url: str) -> None:
    slow = HttpResponse(status_code=200, delay=Delay(value=1000))
    mockserver.when(ORDER).respond(slow)

    with (
        ApiClient(base_url, timeout=0.2, retry=Retry(attempts=2, initial=0.01)) as api,
        pytest.raises(httpx.ReadTimeout),
    ):
        api.get_json("/v1/orders/42")
    mockserver.verify(ORDER, VerificationTimes.exactly(2))


def test_a_dropped_connection_is_retried(mockserver: MockServerClient, api: ApiClient) -> None:
    mockserver.when(ORDER, Times(remaining_times=1)).error(HttpError(drop_connection=True))
    mockserver.when(ORDER).respond(OK)

    assert api.get_json("/v1/orders/42") == {"id": "42"}
    mockserver.verify(ORDER, VerificationTimes.exactly(2))


def test_bearer_and_api_key_auth(mockserver: MockServerClient, base_url: str) -> None:
    tokens = iter(["t1", "t2"])
    bearer = HttpRequest(path="/v1/me", headers={"Authorization": ["Bearer t[12]"]})
    keyed = HttpRequest(path="/v1/me", headers={"X-API-Key": ["k-123"]})
    mockserver.when(bearer).respond(HttpResponse(status_code=200, body={"via": "bearer"}))
    mockserver.when(keyed).respond(HttpResponse(status_code=200, body={"via": "key"}))
    mockserver.when(HttpRequest(path="/v1/me")).respond(HttpResponse(status_code=401))

    with ApiClient(base_url, auth=BearerAuth(lambda: next(tokens))) as api:
        assert api.get_json("/v1/me") == api.get_json("/v1/me") == {"via": "bearer"}
    with ApiClient(base_url, auth=ApiKeyAuth("k-123")) as api:
        assert api.get_json("/v1/me") == {"via": "key"}
    with ApiClient(base_url) as api, pytest.raises(ApiError) as failure:
        api.get_json("/v1/me")
    assert failure.value.status == 401
    mockserver.verify(HttpRequest(path="/v1/me", headers={"Authorization": ["Bearer t1"]}))
    mockserver.verify(HttpRequest(path="/v1/me", headers={"Authorization": ["Bearer t2"]}))


def test_the_breaker_opens_after_repeated_failures_and_closes_after_recovery(
    mockserver: MockServerClient, base_url: str
) -> None:
    mockserver.when(ORDER).respond(HttpResponse(status_code=500))
    api = ApiClient(base_url, retry=Retry(attempts=1), fail_max=3, reset_timeout=0.2)

    for _ in range(3):
        with pytest.raises(ApiError):
            api.get_json("/v1/orders/42")
    for _ in range(5):
        with pytest.raises(CircuitOpen):  # fails fast: no request reaches the server
            api.get_json("/v1/orders/42")
    mockserver.verify(ORDER, VerificationTimes.exactly(3))

    mockserver.clear(ORDER)
    mockserver.when(ORDER).respond(OK)
    deadline = time.monotonic() + 5
    while True:  # after reset_timeout, one trial call is let through and closes the circuit
        try:
            assert api.get_json("/v1/orders/42") == {"id": "42"}
            break
        except CircuitOpen:
            assert time.monotonic() < deadline, "circuit still open 5 s after a 0.2 s reset"
            time.sleep(0.02)
    assert api.breaker.current_state == "closed"
    api.close()
