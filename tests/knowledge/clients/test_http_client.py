"""ApiClient: cache, retries with backoff and Retry-After, 4xx errors, rate limit, offline mode."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from knowledge.clients.http import ApiClient, ApiError, RateLimiter, SourceUnavailable, parse_retry_after

BASE = "https://api.example.org/v1"
KEY = "secret-client-id"


class DemoClient(ApiClient):
    name = "demo"
    offline_hint = "Put demo.json under <data_dir>/demo/."


def make_client(settings: Any, recorder: Any, kwargs: Any, **extra: Any) -> DemoClient:
    return DemoClient(BASE, settings, api_key=KEY, **kwargs(recorder), **extra)


def ok(payload: Any = None) -> httpx.Response:
    return httpx.Response(200, json=payload if payload is not None else {"ok": True})


def test_sends_api_key_and_params(make_settings, client_kwargs, recorder):
    rec = recorder(lambda r: ok())
    client = make_client(make_settings(), rec, client_kwargs)
    assert client.get_json("things", {"b": 2, "a": "x y", "none": None, "flag": True}) == {"ok": True}
    request = rec.requests[0]
    assert request.headers["X-API-Key"] == KEY
    assert request.url.path == "/v1/things"
    assert dict(request.url.params) == {"a": "x y", "b": "2", "flag": "true"}


def test_cache_second_call_hits_no_transport_and_persists(make_settings, client_kwargs, tmp_path, recorder):
    rec = recorder(lambda r: ok({"n": 1}))
    settings = make_settings()
    first = make_client(settings, rec, client_kwargs)
    assert first.get_json("things", {"page": 0, "q": "a"}) == {"n": 1}
    assert first.get_json("things", {"q": "a", "page": 0}) == {"n": 1}  # param order does not matter
    assert rec.calls == 1
    again = make_client(settings, rec, client_kwargs)  # a new process reads the on-disk cache
    assert again.get_json("things", {"page": 0, "q": "a"}) == {"n": 1}
    assert rec.calls == 1
    files = list((settings.cache_dir / "demo").rglob("*.json"))
    assert len(files) == 1
    assert KEY not in files[0].read_text()
    assert make_client(settings, rec, client_kwargs).get_json("things", {"page": 1, "q": "a"})
    assert rec.calls == 2


def test_cache_entries_expire_after_ttl(make_settings, client_kwargs, fake_time, recorder):
    rec = recorder(lambda r: ok())
    client = make_client(make_settings(), rec, client_kwargs, cache_ttl_s=60)
    client.get_json("x")
    fake_time.now += 30
    client.get_json("x")
    assert rec.calls == 1
    fake_time.now += 31
    client.get_json("x")
    assert rec.calls == 2


def test_retries_503_then_succeeds_with_backoff(make_settings, client_kwargs, fake_time, recorder):
    answers = iter([httpx.Response(503), httpx.Response(502), ok({"done": 1})])
    rec = recorder(lambda r: next(answers))
    client = make_client(make_settings(), rec, client_kwargs)
    assert client.get_json("x") == {"done": 1}
    assert rec.calls == 3
    assert len(fake_time.sleeps) == 2
    assert all(0 < s <= 30 + 1 for s in fake_time.sleeps)


def test_retry_after_header_is_honoured(make_settings, client_kwargs, fake_time, recorder):
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), ok()])
    rec = recorder(lambda r: next(answers))
    make_client(make_settings(), rec, client_kwargs).get_json("x")
    assert fake_time.sleeps == [7.0]


def test_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after("99999") == 300.0


def test_gives_up_after_configured_retries(make_settings, client_kwargs, fake_time, recorder):
    rec = recorder(lambda r: httpx.Response(504))
    client = make_client(make_settings(http_retries=2), rec, client_kwargs)
    with pytest.raises(ApiError) as err:
        client.get_json("x")
    assert err.value.status == 504
    assert rec.calls == 3
    assert len(fake_time.sleeps) == 2


def test_404_raises_clear_error_without_retry(make_settings, client_kwargs, fake_time, recorder):
    rec = recorder(lambda r: httpx.Response(404, text=f"no such thing (key {KEY})"))
    client = make_client(make_settings(), rec, client_kwargs)
    with pytest.raises(ApiError) as err:
        client.get_json("berufe/1", {"page": 3})
    message = str(err.value)
    assert err.value.status == 404
    assert "404" in message and f"{BASE}/berufe/1?page=3" in message and "demo" in message
    assert KEY not in message
    assert rec.calls == 1
    assert fake_time.sleeps == []


def test_error_responses_are_not_cached(make_settings, client_kwargs, recorder):
    answers = iter([httpx.Response(400), ok()])
    rec = recorder(lambda r: next(answers))
    client = make_client(make_settings(), rec, client_kwargs)
    with pytest.raises(ApiError):
        client.get_json("x")
    assert client.get_json("x") == {"ok": True}


def test_rate_limiter_spaces_requests(fake_time):
    limiter = RateLimiter(2.0, clock=fake_time.monotonic, sleep=fake_time.sleep)
    for _ in range(4):
        limiter.acquire()
    assert fake_time.sleeps == [0.5, 0.5, 0.5]
    fake_time.now += 10  # idle time refills the bucket, but only up to the burst size
    limiter.acquire()
    limiter.acquire()
    assert fake_time.sleeps[-1] == 0.5 and len(fake_time.sleeps) == 4


def test_rate_limiter_burst(fake_time):
    limiter = RateLimiter(1.0, burst=3, clock=fake_time.monotonic, sleep=fake_time.sleep)
    for _ in range(4):
        limiter.acquire()
    assert fake_time.sleeps == [1.0]


def test_client_rate_limit_and_cache_hits_are_free(make_settings, client_kwargs, fake_time, recorder):
    rec = recorder(lambda r: ok())
    client = make_client(make_settings(http_rate_per_s=4), rec, client_kwargs)
    for page in range(3):
        client.get_json("x", {"page": page})
    client.get_json("x", {"page": 0})  # cached: no request, no token
    assert rec.times == [0.0, 0.25, 0.5]
    assert fake_time.sleeps == [0.25, 0.25]


def test_offline_mode_raises_source_unavailable(make_settings, client_kwargs, recorder):
    rec = recorder(lambda r: ok())
    settings = make_settings(offline=True)
    client = make_client(settings, rec, client_kwargs)
    with pytest.raises(SourceUnavailable) as err:
        client.get_json("x")
    message = str(err.value)
    assert "demo" in message and "offline" in message
    assert f"{settings.data_dir}/demo/" in message
    assert rec.calls == 0


def test_offline_mode_still_serves_the_cache(make_settings, client_kwargs, recorder):
    rec = recorder(lambda r: ok({"cached": True}))
    make_client(make_settings(), rec, client_kwargs).get_json("x")
    offline = make_client(make_settings(offline=True), rec, client_kwargs)
    assert offline.get_json("x") == {"cached": True}
    assert rec.calls == 1


def test_no_network_fails_fast(make_settings, client_kwargs, fake_time, recorder):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Name or service not known", request=request)

    rec = recorder(refuse)
    client = make_client(make_settings(), rec, client_kwargs)
    with pytest.raises(SourceUnavailable) as err:
        client.get_json("x")
    assert "api.example.org" in str(err.value)
    assert rec.calls == 1
    assert fake_time.sleeps == []


def test_transport_errors_after_first_contact_are_retried(make_settings, client_kwargs, recorder):
    state = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        state["n"] += 1
        if state["n"] == 2:
            raise httpx.ReadTimeout("slow", request=request)
        return ok({"n": state["n"]})

    rec = recorder(flaky)
    client = make_client(make_settings(), rec, client_kwargs)
    assert client.get_json("a") == {"n": 1}
    assert client.get_json("b") == {"n": 3}


def test_non_json_body_is_an_api_error(make_settings, client_kwargs, recorder):
    rec = recorder(lambda r: httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ApiError, match="not JSON"):
        make_client(make_settings(), rec, client_kwargs).get_json("x")


def test_cache_key_ignores_none_and_order():
    from knowledge.clients.http import ResponseCache

    a = ResponseCache.key("GET", BASE, {"a": 1, "b": None, "c": True})
    b = ResponseCache.key("get", BASE, {"c": True, "a": 1})
    assert a == b
    assert json.dumps(a)
