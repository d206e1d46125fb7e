"""An HTTP API client: timeouts, retries with exponential backoff, auth, a circuit breaker."""

from commons_http.client import ApiClient, ApiError, ApiKeyAuth, BearerAuth, CircuitOpen, Retry
from commons_http.items import Item, ItemsClient
from commons_http.orders import OrdersClient

__all__ = [
    "ApiClient",
    "ApiError",
    "ApiKeyAuth",
    "BearerAuth",
    "CircuitOpen",
    "Item",
    "ItemsClient",
    "OrdersClient",
    "Retry",
]
