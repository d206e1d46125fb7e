"""One way to call HTTP APIs: every call has a timeout, transient failures of idempotent calls
are retried with exponential backoff (tenacity), and a circuit breaker (pybreaker) stops
calling a dependency that keeps failing."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx
import pybreaker
import tenacity

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class ApiError(Exception):
    """The API answered with an error status (after any retries)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response, self.status = response, response.status_code
        request = response.request
        super().__init__(f"{request.method} {request.url} → {self.status}: {response.text[:200]}")


class CircuitOpen(Exception):
    """The circuit breaker is open: the call was not made."""


class _Transient(Exception):
    """A retryable status; carries the response for the final error."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``; ``token`` may be a callable (fetched per request)."""

    def __init__(self, token: str | Callable[[], str]) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token() if callable(self.token) else self.token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class ApiKeyAuth(httpx.Auth):
    """An API key in a header (``X-API-Key`` unless told otherwise)."""

    def __init__(self, key: str, header: str = "X-API-Key") -> None:
        self.key, self.header = key, header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self.key
        yield request


@dataclass(frozen=True)
class Retry:
    """Up to ``attempts`` tries; waits ``initial``·2ⁿ seconds between them, at most ``maximum``."""

    attempts: int = 3
    initial: float = 0.1
    maximum: float = 2.0


class ApiClient:
    """``client.request(method, path, ...) -> httpx.Response`` plus ``get_json``/``post_json``.

    A call that still fails after its retries counts once against the breaker; after
    ``fail_max`` such calls in a row the breaker opens and calls raise :class:`CircuitOpen`
    without touching the network until ``reset_timeout`` seconds have passed.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: float = 5.0,
        retry: Retry = Retry(),
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry
        self.http = httpx.Client(base_url=base_url, auth=auth, timeout=timeout, transport=transport)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_timeout, throw_new_error_on_trip=False
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response: httpx.Response = self.breaker.call(self._with_retries, method, path, **kwargs)
        except pybreaker.CircuitBreakerError as exc:
            raise CircuitOpen(f"{method} {path}: circuit open after repeated failures") from exc
        except _Transient as exc:
            raise ApiError(exc.response) from None
        if response.is_error:
            raise ApiError(response)
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post_json(self, path: str, payload: Any, *, idempotency_key: str | None = None) -> Any:
        """POST is retried only with an ``Idempotency-Key`` (the server dedupes the retries)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request("POST", path, json=payload, headers=headers).json()

    def _with_retries(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retryable = method.upper() in IDEMPOTENT or "Idempotency-Key" in kwargs.get("headers", {})
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts if retryable else 1),
            wait=tenacity.wait_exponential(
                multiplier=self.retry.initial, min=self.retry.initial, max=self.retry.maximum
            ),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _Transient)),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                response = self.http.request(method, path, **kwargs)
                if response.status_code in RETRY_STATUSES:
                    raise _Transient(response)
                if response.status_code >= 500:  # a failure for the breaker, not retried
                    raise ApiError(response)
        return response
