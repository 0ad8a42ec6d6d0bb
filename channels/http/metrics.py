"""Prometheus metrics of one app, in the app's own registry (several apps in one process, as in tests,
never collide; ``GET /metrics`` exposes exactly this app's series)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

KNOWN_CHANNELS = frozenset({"api", "widget", "telegram", "cli", "test"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "craft_http_requests_total",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "craft_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.turns = Counter(
            "craft_turns_total",
            "Advisor turns by channel, mode (json/sse) and outcome.",
            ["channel", "mode", "outcome"],
            registry=r,
        )
        self.turn_latency = Histogram(
            "craft_turn_duration_seconds",
            "Advisor turn latency (message in, final state out).",
            ["mode"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "craft_errors_total", "Error responses and stream errors by code.", ["code"], registry=r
        )
        self.sse_open = Gauge("craft_sse_streams_open", "Server-Sent Event streams open now.", registry=r)
        self.sessions = Counter(
            "craft_sessions_created_total", "Sessions created by channel.", ["channel"], registry=r
        )
        self.feedback = Counter(
            "craft_feedback_total", "Course feedback by verdict.", ["verdict"], registry=r
        )
        self.rate_limited = Counter(
            "craft_rate_limited_total", "Requests refused by the rate limiter.", registry=r
        )
        self.ready = Gauge("craft_ready", "1 once models and indexes are loaded.", registry=r)

    @staticmethod
    def channel(name: str) -> str:
        """A channel label with a bounded set of values (clients name their own channel)."""
        return name if name in KNOWN_CHANNELS else "other"

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
