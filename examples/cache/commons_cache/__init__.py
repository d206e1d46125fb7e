"""An async Redis cache (JSON values, key prefix, TTL, get_or_set) and a distributed lock."""

from commons_cache.cache import Cache
from commons_cache.lock import Lock, LockError, LockLost, LockNotAcquired

__all__ = ["Cache", "Lock", "LockError", "LockLost", "LockNotAcquired"]
