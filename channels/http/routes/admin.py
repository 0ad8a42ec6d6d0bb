"""Advisor/admin endpoints behind ``X-API-Key``: list sessions (by person across channels), look into one,
export feedback events for retraining, and erase everything of one person."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from channels.http.deps import (
    AdvisorDep,
    FeedbackDep,
    RateLimited,
    RunnerDep,
    SessionsDep,
    require_api_key,
)
from channels.http.errors import ApiError, responses
from channels.http.routes.sessions import erase_session
from channels.http.schemas import (
    Channel,
    Deleted,
    FeedbackEventOut,
    FeedbackExport,
    Profile,
    SessionDetail,
    SessionInfo,
    SessionList,
    UserRef,
)

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    # rate limited first: guessing keys costs tokens like everything else
    dependencies=[RateLimited, Depends(require_api_key)],
    responses=responses(401, 403, 429),
)


@router.get(
    "/sessions", response_model=SessionList, responses=responses(422), summary="Sessions, recent first"
)
async def list_sessions(
    sessions: SessionsDep,
    user_ref: Annotated[UserRef | None, Query(description="Only this person's sessions.")] = None,
    channel: Annotated[Channel | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> SessionList:
    records = await sessions.list(user_ref=user_ref, channel=channel, limit=limit, offset=offset)
    total = await sessions.count(user_ref=user_ref, channel=channel)
    return SessionList(sessions=[SessionInfo.from_record(r) for r in records], total=total)


@router.get(
    "/sessions/{session_id}",
    response_model=SessionDetail,
    responses=responses(404, 422),
    summary="One session: its record, profile and feedback",
)
async def session_detail(
    session_id: str, sessions: SessionsDep, advisor: AdvisorDep, feedback: FeedbackDep
) -> SessionDetail:
    record = await sessions.get(session_id)
    if record is None:
        raise ApiError(404, "session_not_found", "No such session.")
    return SessionDetail(
        session=SessionInfo.from_record(record),
        profile=Profile.from_state(await advisor.state(record.id)),
        feedback=[FeedbackEventOut.from_event(e) for e in await feedback.for_session(record.id)],
    )


@router.get(
    "/feedback",
    response_model=FeedbackExport,
    responses=responses(422),
    summary="Feedback events, oldest first",
)
async def export_feedback(
    feedback: FeedbackDep,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Last event id already exported.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> FeedbackExport:
    events = await feedback.export(after_id=after_id, limit=limit)
    return FeedbackExport(
        events=[FeedbackEventOut.from_event(e) for e in events],
        next_after_id=events[-1].id if events else after_id,
    )


@router.delete(
    "/users/{user_ref}",
    response_model=Deleted,
    responses=responses(422),
    summary="Erase every session of one person (all channels)",
)
async def delete_user(
    user_ref: Annotated[UserRef, Path()],
    sessions: SessionsDep,
    advisor: AdvisorDep,
    runner: RunnerDep,
    feedback: FeedbackDep,
) -> Deleted:
    deleted = 0
    while records := await sessions.list(user_ref=user_ref, limit=500):
        for record in records:
            await erase_session(
                record.id, advisor=advisor, runner=runner, sessions=sessions, feedback=feedback
            )
            deleted += 1
    return Deleted(deleted=deleted)
