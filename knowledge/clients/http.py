"""Shared HTTP machinery for the public APIs: disk cache, retries, rate limit, offline mode.

Every official source is a free public service; the client treats it politely (client-side rate limit,
backoff that honours ``Retry-After``) and never makes a test or an offline run touch the network.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from craft.settings import Settings

Sleep = Callable[[float], None]
Clock = Callable[[], float]
ParamValue = str | int | float | bool | None
Params = Mapping[str, ParamValue]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_S = 300.0


class SourceUnavailable(RuntimeError):
    """The source cannot be reached (offline mode, no network); the message says what to do instead."""

    def __init__(self, source: str, reason: str, hint: str = "") -> None:
        self.source = source
        self.reason = reason
        self.hint = hint
        text = f"{source} is unavailable: {reason}."
        if hint:
            text += f" {hint}"
        super().__init__(text)


class ApiError(RuntimeError):
    """The API answered with an error status; carries status and URL (the API key is never included)."""

    def __init__(self, source: str, status: int, url: str, detail: str = "") -> None:
        self.source = source
        self.status = status
        self.url = url
        text = f"{source}: HTTP {status} for GET {url}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class _Transient(Exception):
    """Internal: a retryable answer, with the server's requested delay if it sent one."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        reference = now if now is not None else time.time()
        seconds = when.timestamp() - reference
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class RateLimiter:
    """Token bucket (GCRA form): ``rate`` requests per second with bursts up to ``burst``.

    Shareable between clients that hit the same host; thread-safe. ``rate <= 0`` disables it.
    """

    def __init__(self, rate: float, burst: int = 1, clock: Clock = time.monotonic, sleep: Sleep = time.sleep):
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tat: float | None = None  # theoretical arrival time of the next request
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may go out; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        interval = 1.0 / self.rate
        with self._lock:
            now = self._clock()
            tat = now if self._tat is None else max(self._tat, now)
            wait = max(0.0, tat - (self.burst - 1) * interval - now)
            self._tat = tat + interval
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass(frozen=True)
class CachedResponse:
    url: str
    fetched_at: float
    body: Any


class ResponseCache:
    """Persistent JSON response cache, one file per request key, expired after ``ttl_s``."""

    def __init__(self, directory: Path, ttl_s: float | None, now: Clock = time.time) -> None:
        self.directory = directory
        self.ttl_s = ttl_s
        self._now = now

    @staticmethod
    def key(method: str, url: str, params: Params) -> str:
        items = sorted((k, _param_text(v)) for k, v in params.items() if v is not None)
        raw = json.dumps([method.upper(), url, items], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedResponse | None:
        path = self._path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        fetched_at = float(record.get("fetched_at", 0))
        if self.ttl_s is not None and self._now() - fetched_at > self.ttl_s:
            return None
        return CachedResponse(url=record.get("url", ""), fetched_at=fetched_at, body=record.get("body"))

    def put(self, key: str, url: str, body: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"url": url, "fetched_at": self._now(), "body": body}
        write_atomic(path, json.dumps(record, ensure_ascii=False))


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file + rename so an interrupted run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _param_text(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def join_multi(values: str | int | Sequence[str | int] | None) -> str | None:
    """Comma-join the 'several comma-separated values possible' parameters of the BA APIs."""
    if values is None:
        return None
    if isinstance(values, str | int):
        return str(values)
    joined = ",".join(str(v) for v in values)
    return joined or None


class ApiClient:
    """Base client: GET JSON with cache, rate limit, retries and an offline guard.

    Inject ``transport`` (e.g. ``httpx.MockTransport``) or a ready ``client`` in tests, plus ``sleep``
    and ``clock`` so neither retries nor the rate limiter really wait.
    """

    name: str = "api"
    offline_hint: str = "Provide the files locally instead."

    def __init__(
        self,
        base_url: str,
        settings: Settings,
        *,
        api_key: str | None = None,
        api_key_header: str = "X-API-Key",
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        now: Clock = time.time,
        limiter: RateLimiter | None = None,
        cache_ttl_s: float | None = 7 * 24 * 3600,
        use_cache: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self._api_key = api_key
        headers = {"Accept": "application/json", "User-Agent": "craft-advisor/0.1 (+course advisor)"}
        if api_key:
            headers[api_key_header] = api_key
        if client is not None:
            client.headers.update(headers)
            self._http = client
            self._owns_http = False
        else:
            self._http = httpx.Client(
                transport=transport, headers=headers, timeout=settings.http_timeout_s, follow_redirects=True
            )
            self._owns_http = True
        self._sleep = sleep
        self._now = now
        self.limiter = limiter or RateLimiter(settings.http_rate_per_s, clock=clock, sleep=sleep)
        self.cache = (
            ResponseCache(settings.cache_dir / self.name, cache_ttl_s, now=now) if use_cache else None
        )
        self._reached = False  # set once any request got an HTTP answer: later connect errors are transient
        self.requests_sent = 0

    # --- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- public --------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def unavailable(self, reason: str) -> SourceUnavailable:
        hint = self.offline_hint.replace("<data_dir>", str(self.settings.data_dir))
        return SourceUnavailable(self.name, reason, hint)

    def get_json(self, path: str, params: Params | None = None, *, use_cache: bool = True) -> Any:
        """GET ``path`` and decode JSON; cache hits neither touch the network nor the rate limit."""
        url = self.url(path)
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        key = ResponseCache.key("GET", url, clean)
        if self.cache is not None and use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                return hit.body
        if self.settings.offline:
            raise self.unavailable("offline mode is on (CRAFT_OFFLINE) and the response is not cached")
        body = self._fetch(url, {k: _param_text(v) for k, v in clean.items()})
        if self.cache is not None:
            self.cache.put(key, self._redact(url), body)
        return body

    # --- internals -----------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        return wait_exponential_jitter(initial=1.0, max=30.0, jitter=1.0)(state)

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, _Transient):
            return True
        # A connect error before the host ever answered means "no network": fail fast instead.
        return isinstance(exc, httpx.TransportError) and self._reached

    def _fetch(self, url: str, params: dict[str, str]) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(max(0, self.settings.http_retries) + 1),
            wait=self._wait,
            retry=retry_if_exception(self._retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            response = retrying(self._attempt, url, params)
        except _Transient as exc:
            raise ApiError(
                self.name,
                exc.response.status_code,
                self._redact(str(exc.response.url)),
                "gave up after retries",
            ) from None
        except httpx.TransportError as exc:
            reason = f"cannot reach {httpx.URL(url).host} ({type(exc).__name__}: {self._redact(str(exc))})"
            raise self.unavailable(reason) from None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                self.name, response.status_code, self._redact(str(response.url)), "not JSON"
            ) from None

    def _attempt(self, url: str, params: dict[str, str]) -> httpx.Response:
        self.limiter.acquire()
        self.requests_sent += 1
        response = self._http.get(url, params=params)
        self._reached = True
        if response.status_code in RETRY_STATUSES:
            raise _Transient(response, parse_retry_after(response.headers.get("Retry-After"), self._now()))
        if response.status_code >= 400:
            detail = self._redact(response.text[:200].strip().replace("\n", " "))
            raise ApiError(self.name, response.status_code, self._redact(str(response.url)), detail)
        return response


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
