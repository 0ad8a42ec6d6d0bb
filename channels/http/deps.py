"""Dependencies as ``Annotated`` aliases, so a route says what it needs in its signature (``advisor:
AdvisorDep``) and everything comes from the one set opened by the app's lifespan (``app.state``)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from agent.advisor import Advisor
from channels.http.errors import ApiError
from channels.http.feedback_store import FeedbackStore
from channels.http.metrics import Metrics
from channels.http.ratelimit import TokenBucketLimiter, client_key, valid_api_key
from channels.http.schemas import SESSION_ID_PATTERN
from channels.http.sessions_store import SessionRecord, SessionStore
from channels.http.turns import TurnRunner
from craft.settings import Settings

_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Advisor/admin key (settings.api_keys)."
)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _advisor(request: Request) -> Advisor:
    return request.app.state.advisor


def _sessions(request: Request) -> SessionStore:
    return request.app.state.sessions


def _feedback(request: Request) -> FeedbackStore:
    return request.app.state.feedback


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def _runner(request: Request) -> TurnRunner:
    return request.app.state.runner


SettingsDep = Annotated[Settings, Depends(_settings)]
AdvisorDep = Annotated[Advisor, Depends(_advisor)]
SessionsDep = Annotated[SessionStore, Depends(_sessions)]
FeedbackDep = Annotated[FeedbackStore, Depends(_feedback)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
RunnerDep = Annotated[TurnRunner, Depends(_runner)]


async def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Depends(_api_key_header)] = None
) -> str:
    """401 without a key, 403 with one that is not configured (no keys configured: every key is wrong)."""
    if not key:
        raise ApiError(401, "unauthorized", "This endpoint needs an X-API-Key header.")
    if not valid_api_key(key, settings.api_keys):
        raise ApiError(403, "forbidden", "The X-API-Key is not valid.")
    return key


ApiKeyDep = Annotated[str, Depends(require_api_key)]


async def rate_limit(request: Request, settings: SettingsDep, metrics: MetricsDep) -> None:
    """One token per request from the client's bucket; 429 with Retry-After when it is empty."""
    limiter: TokenBucketLimiter | None = request.app.state.limiter
    if limiter is None:
        return
    decision = limiter.hit(client_key(request, settings.api_keys))
    if not decision.allowed:
        metrics.rate_limited.inc()
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests; please wait {decision.retry_after_header} s and try again.",
            headers={"Retry-After": decision.retry_after_header},
        )


RateLimited = Depends(rate_limit)


async def existing_session(session_id: str, sessions: SessionsDep) -> SessionRecord:
    """The session named in the path, or 404 (a malformed id is just another unknown one)."""
    record = await sessions.get(session_id) if _SESSION_ID.match(session_id) else None
    if record is None:
        raise ApiError(404, "session_not_found", "No such session (it may have been deleted).")
    return record


SessionDep = Annotated[SessionRecord, Depends(existing_session)]
