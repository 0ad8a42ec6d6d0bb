"""Per-client rate limiting: a token bucket per client key (API key, else IP), in process.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_minute / 60`` tokens a second; each request
takes one. Tokens are computed lazily from the time of the last request, so idle clients cost nothing but
their entry, and entries are capped (least recently used dropped first: it has had the longest time to
refill, so dropping it forgives the least). Several server processes each limit on their own.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float
    """Seconds until one token is back (0 when allowed)."""

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` wants whole seconds; round up so a client that waits that long gets through."""
        return str(max(1, math.ceil(self.retry_after)))


class TokenBucketLimiter:
    """``limiter.hit(key)`` takes a token from ``key``'s bucket; thread-safe."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int | None = None,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive (leave the limiter out to turn it off)")
        self.rate = rate_per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, math.ceil(rate_per_minute)))
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)
        self._lock = threading.Lock()

    def hit(self, key: str, cost: float = 1.0) -> Decision:
        with self._lock:
            moment = self.clock()
            tokens, at = self._buckets.pop(key, (self.capacity, moment))
            tokens = min(self.capacity, tokens + (moment - at) * self.rate)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = (tokens, moment)  # most recently used last
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        retry_after = 0.0 if allowed else (cost - tokens) / self.rate
        return Decision(allowed=allowed, remaining=int(tokens), retry_after=retry_after)

    def __len__(self) -> int:
        return len(self._buckets)


def client_key(request: Request, api_keys: list[str]) -> str:
    """The bucket of a request: its API key when that key is valid (a hash, never the key itself), else
    the client's address. An invalid key counts as no key, so rotating made-up keys buys nothing."""
    key = request.headers.get("x-api-key")
    if key and valid_api_key(key, api_keys):
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


def valid_api_key(key: str, api_keys: list[str]) -> bool:
    """Constant-time comparison against every configured key."""
    given = key.encode()
    return any(hmac.compare_digest(given, k.encode()) for k in api_keys if k)
