"""Conversations: create, send messages (JSON or Server-Sent Events), read the profile, give feedback on a
course, delete. The session id in the path is the capability: whoever holds it may use these endpoints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from agent.advisor import Advisor, UnknownCourse
from channels.http.deps import (
    AdvisorDep,
    FeedbackDep,
    MetricsDep,
    RateLimited,
    RunnerDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
)
from channels.http.errors import ApiError, responses
from channels.http.feedback_store import FeedbackStore
from channels.http.metrics import Metrics
from channels.http.schemas import (
    FeedbackIn,
    FeedbackOut,
    MessageIn,
    Profile,
    SessionCreate,
    SessionCreated,
    TurnOut,
)
from channels.http.sessions_store import SessionStore
from channels.http.turns import TurnEvent, TurnFailed, TurnRunner

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], dependencies=[RateLimited])

SSE_PING_S = 15
SSE_EVENT_SCHEMA = {
    "type": "object",
    "description": "One Server-Sent Event; `data` is JSON.",
    "properties": {
        "event": {
            "type": "string",
            "enum": ["token", "candidates", "recommendations", "explanation", "profile", "done", "error"],
        },
        "data": {"type": "string"},
    },
    "required": ["event", "data"],
}
STREAM_DESCRIPTION = (
    "With `Accept: text/event-stream`: Server-Sent Events `token` ({text}), `candidates` (occupations to "
    "choose from), `recommendations` (course cards as soon as they are chosen), `explanation` ({course_id, "
    "text, source}), `profile` (as GET /v1/sessions/{id}, after the turn), `done` (the JSON body below), or "
    "`error` ({code, message}) after which the stream ends."
)


@router.post(
    "",
    status_code=201,
    response_model=SessionCreated,
    responses=responses(400, 413, 422, 429),
    summary="Start a conversation",
)
async def create_session(
    advisor: AdvisorDep,
    sessions: SessionsDep,
    metrics: MetricsDep,
    body: Annotated[SessionCreate | None, Body()] = None,
) -> SessionCreated:
    body = body or SessionCreate()
    record = await sessions.create(channel=body.channel, user_ref=body.user_ref, language=body.language)
    await advisor.create(record.id, language=body.language)
    metrics.sessions.labels(metrics.channel(body.channel)).inc()
    return SessionCreated(session_id=record.id)


@router.post(
    "/{session_id}/messages",
    response_model=TurnOut,
    responses={
        200: {
            "description": STREAM_DESCRIPTION,
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        },
        **responses(400, 404, 413, 422, 429, 503),
    },
    summary="Send a message; the reply as JSON or streamed",
)
async def post_message(
    body: MessageIn,
    record: SessionDep,
    request: Request,
    runner: RunnerDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> Any:
    if len(body.text) > settings.max_message_chars:
        raise ApiError(
            413,
            "message_too_long",
            f"Messages can be at most {settings.max_message_chars:,} characters; this one has "
            f"{len(body.text):,}. Please shorten it (for a CV, paste the skills part).",
        )
    if "text/event-stream" in request.headers.get("accept", ""):
        return EventSourceResponse(
            _stream(runner.events(record, body.text, "sse"), metrics),
            ping=SSE_PING_S,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    result = await runner.run(record, body.text)
    if isinstance(result, TurnFailed):
        raise ApiError(result.status, result.code, result.message)
    return result


async def _stream(
    events: AsyncIterator[TurnEvent | TurnFailed], metrics: Metrics
) -> AsyncIterator[ServerSentEvent]:
    metrics.sse_open.inc()
    try:
        async for item in events:
            if isinstance(item, TurnFailed):
                metrics.errors.labels(item.code).inc()
                yield _event("error", {"code": item.code, "message": item.message})
                return
            yield _event(item.name, item.data)
    finally:
        metrics.sse_open.dec()


def _event(name: str, data: Any) -> ServerSentEvent:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False), event=name)


@router.get(
    "/{session_id}", response_model=Profile, responses=responses(404, 422, 429), summary="The user's profile"
)
async def get_profile(record: SessionDep, advisor: AdvisorDep) -> Profile:
    return Profile.from_state(await advisor.state(record.id))


@router.post(
    "/{session_id}/feedback",
    response_model=FeedbackOut,
    responses=responses(400, 404, 413, 422, 429),
    summary="Like, dislike or mark a shown course as taken",
)
async def post_feedback(
    body: FeedbackIn,
    record: SessionDep,
    advisor: AdvisorDep,
    runner: RunnerDep,
    sessions: SessionsDep,
    feedback: FeedbackDep,
    metrics: MetricsDep,
) -> FeedbackOut:
    """Feeds the advisor (a disliked or taken course is never shown again; ``refresh`` says the list should be
    asked for anew) and is kept as an event for retraining."""
    async with runner.lock(record.id):
        try:
            state, refresh = await advisor.feedback(record.id, body.course_id, body.verdict)
        except UnknownCourse as error:
            raise ApiError(
                404, "unknown_course", "This course was not recommended in this session."
            ) from error
        await feedback.add(
            session_id=record.id,
            user_ref=record.user_ref,
            occupation_uri=state.occupation.uri if state.occupation else None,
            course_id=body.course_id,
            verdict=body.verdict,
            reason=body.reason,
        )
        await sessions.touch(record.id)
    metrics.feedback.labels(body.verdict).inc()
    return FeedbackOut(refresh=refresh, profile=Profile.from_state(state))


@router.delete(
    "/{session_id}",
    status_code=204,
    response_class=Response,
    responses=responses(404, 422, 429),
    summary="Erase the conversation, its profile, pasted CV text and feedback",
)
async def delete_session(
    record: SessionDep, advisor: AdvisorDep, runner: RunnerDep, sessions: SessionsDep, feedback: FeedbackDep
) -> Response:
    await erase_session(record.id, advisor=advisor, runner=runner, sessions=sessions, feedback=feedback)
    return Response(status_code=204)


async def erase_session(
    session_id: str, *, advisor: Advisor, runner: TurnRunner, sessions: SessionStore, feedback: FeedbackStore
) -> None:
    """Right to deletion: the checkpoints (messages, profile, CV text), feedback events, the registry row."""
    async with runner.lock(session_id):
        await advisor.delete(session_id)
        await feedback.delete_session(session_id)
        await sessions.delete(session_id)
