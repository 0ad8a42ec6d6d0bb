"""Per-client rate limiting: the token bucket on a controlled clock, and 429 + Retry-After through the app
(no data needed: the limit is checked before any route touches the advisor)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from channels.http import create_app
from channels.http.ratelimit import TokenBucketLimiter, client_key
from craft.settings import Settings

API_KEY = "limit-test-key-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(60, burst=3, clock=clock)  # one token a second
    assert [limiter.hit("a").allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.hit("a")
    assert not denied.allowed and denied.retry_after == pytest.approx(1.0)
    assert denied.retry_after_header == "1"
    clock.now += 0.5
    assert not limiter.hit("a").allowed  # half a token is not a token
    clock.now += 0.5
    assert limiter.hit("a").allowed
    assert not limiter.hit("a").allowed
    clock.now += 100  # refills up to the burst, not beyond
    assert [limiter.hit("a").allowed for _ in range(4)] == [True, True, True, False]


def test_clients_have_their_own_buckets_and_idle_ones_are_dropped_first() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(6, burst=1, clock=clock, max_clients=2)
    assert limiter.hit("a").allowed and limiter.hit("b").allowed
    assert not limiter.hit("a").allowed and not limiter.hit("b").allowed
    assert limiter.hit("c").allowed  # "a" (least recently used) is dropped
    assert len(limiter) == 2
    denied = limiter.hit("b")
    assert denied.retry_after == pytest.approx(10.0) and denied.retry_after_header == "10"
    with pytest.raises(ValueError):
        TokenBucketLimiter(0)


def _request(headers: dict[str, str], host: str = "203.0.113.9") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "client": (host, 5555), "method": "GET", "path": "/"})


def test_client_key_uses_a_valid_api_key_else_the_address() -> None:
    keyed = client_key(_request({"X-API-Key": API_KEY}), [API_KEY])
    assert keyed.startswith("key:") and API_KEY not in keyed
    assert client_key(_request({"X-API-Key": "made-up"}), [API_KEY]) == "ip:203.0.113.9"
    assert client_key(_request({}), [API_KEY]) == "ip:203.0.113.9"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(
        checkpoint_url=":memory:", session_db=":memory:", rate_limit_per_minute=3, api_keys=[API_KEY]
    )
    with TestClient(create_app(settings, warm=False)) as client:
        yield client


def test_429_with_retry_after_per_client(client: TestClient) -> None:
    path = f"/v1/sessions/{secrets.token_urlsafe(24)}"
    assert [client.get(path).status_code for _ in range(3)] == [404, 404, 404]
    limited = client.get(path)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "20"  # 3 a minute: one token every 20 s
    assert limited.json()["error"]["code"] == "rate_limited" and "20 s" in limited.json()["error"]["message"]
    assert client.post("/v1/recommend", json={"occupation": "baker"}).status_code == 429  # one bucket for /v1
    # probes and scrapers are never limited; a valid API key has its own bucket
    assert all(client.get(p).status_code == 200 for p in ("/healthz", "/readyz", "/metrics") * 3)
    assert client.get("/v1/admin/sessions", headers={"X-API-Key": API_KEY}).status_code == 200
    assert (
        client.get("/v1/admin/sessions", headers={"X-API-Key": "guess"}).status_code == 429
    )  # still the IP's
    metrics = client.get("/metrics").text
    assert re.search(r"craft_rate_limited_total [3-9]", metrics)
