"""The API's request and response bodies. Requests forbid unknown fields and bound every field (the body size
limit bounds the rest); responses are built from the agent's state by the ``from_*`` constructors here, so
the contract is written down once and the OpenAPI schema at /docs is exactly what clients get."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent.state import AdvisorState, Coverage, Phase, Preferences, ShownCourse
from channels.http.feedback_store import FeedbackEvent
from channels.http.sessions_store import SessionRecord
from tools.retrieval.base import Filters

Lang = Literal["en", "de"]
Verdict = Literal["like", "dislike", "taken"]
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"

Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
UserRef = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@+=-]+$")]
CourseId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ---------------------------------------------------------------------------------------------


class SessionCreate(_In):
    language: Lang | None = Field(
        None, description="Reply language, fixed for the session; unset: detected from each message."
    )
    channel: Channel = Field("api", description="Where the session comes from: api, widget, telegram, …")
    user_ref: UserRef | None = Field(
        None, description="The caller's reference for the person, linking their sessions across channels."
    )


class MessageIn(_In):
    text: str = Field(
        description="What the user wrote. Longer than the server's max_message_chars (8,000 by default): 413."
    )


class FeedbackIn(_In):
    course_id: CourseId = Field(description="A course this session was shown.")
    verdict: Verdict
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        None, description="Optional free text (kept with the event for retraining; never logged)."
    )


class RecommendIn(_In):
    occupation: ShortText = Field(description="Target occupation: ESCO URI or a job title (EN/DE).")
    skills_have: list[ShortText] = Field(
        default_factory=list, max_length=50, description="Skills the person already has, in their words."
    )
    k: int = Field(10, ge=1, le=50, description="How many courses.")
    filters: Filters | None = Field(
        None, description="Hard constraints; a course breaking one is never shown."
    )
    lang: Lang = "en"


# --- responses --------------------------------------------------------------------------------------------


class SessionCreated(_Out):
    session_id: str = Field(description="Unguessable; the capability for this session's endpoints.")


class OccupationOut(_Out):
    uri: str
    label: str


class CandidateOut(_Out):
    uri: str
    label: str
    score: float


class SkillOut(_Out):
    uri: str
    label: str


class GapSkillOut(_Out):
    uri: str
    label: str
    essential: bool


class RecommendationOut(_Out):
    """A course card: what it is, what it costs, which gap skills it teaches and why it was chosen."""

    course_id: str
    source: str
    url: str | None
    title: str
    provider: str | None
    language: str | None
    level: str | None
    format: str | None
    price: float | None
    currency: str | None
    free: bool | None
    score: float
    covers: list[SkillOut]
    explanation: str | None = Field(description="Why this course; null until written (streams arrive later).")
    feedback: Verdict | None = Field(None, description="The user's verdict on it, once given.")

    @classmethod
    def from_shown(cls, course: ShownCourse) -> RecommendationOut:
        return cls(
            **course.model_dump(exclude={"covers", "explanation_source", "turn"}),
            covers=[SkillOut(uri=c.uri, label=c.label) for c in course.covers],
        )


class CoverageOut(_Out):
    essential_total: int
    essential_covered: int
    total: int
    covered: int
    missing_essential: list[SkillOut]

    @classmethod
    def from_coverage(cls, coverage: Coverage) -> CoverageOut:
        return cls(
            **coverage.model_dump(exclude={"missing_essential"}),
            missing_essential=[SkillOut(uri=s.uri, label=s.label) for s in coverage.missing_essential],
        )


class PathStepOut(_Out):
    course_id: str
    title: str
    level: str | None
    adds: list[SkillOut]


class Profile(_Out):
    """What the advisor knows about the user and what it shows them (``GET /v1/sessions/{id}``)."""

    target_occupation: OccupationOut | None
    occupation_candidates: list[CandidateOut] = Field(description="Close matches to choose from, if any.")
    skills_have: list[SkillOut]
    skills_skip: list[SkillOut] = Field(description="Topics the user is not interested in.")
    skill_gap: list[GapSkillOut] = Field(description="Skills still missing, essential first.")
    preferences: Preferences
    recommendations: list[RecommendationOut] = Field(
        description="The latest list, in the order shown, without courses since disliked or taken."
    )
    coverage: CoverageOut | None = Field(description="How much of the gap the latest list teaches.")
    learning_path: list[PathStepOut] = Field(description="The latest list ordered beginner → advanced.")
    phase: Phase
    language: Lang
    turn: int

    @classmethod
    def from_state(cls, state: AdvisorState) -> Profile:
        by_id = {c.course_id: c for c in state.shown}
        current = [by_id[i] for i in state.current if i in by_id]
        return cls(
            target_occupation=(
                OccupationOut(uri=state.occupation.uri, label=state.occupation.label)
                if state.occupation
                else None
            ),
            occupation_candidates=[
                CandidateOut(uri=c.uri, label=c.label, score=c.score) for c in state.candidates
            ],
            skills_have=[SkillOut(uri=s.uri, label=s.label) for s in state.skills_have],
            skills_skip=[SkillOut(uri=s.uri, label=s.label) for s in state.skills_skip if s.uri],
            skill_gap=[GapSkillOut(uri=g.uri, label=g.label, essential=g.essential) for g in state.gap],
            preferences=state.preferences,
            recommendations=[
                RecommendationOut.from_shown(c) for c in current if c.feedback not in ("dislike", "taken")
            ],
            coverage=CoverageOut.from_coverage(state.coverage) if state.coverage else None,
            learning_path=[
                PathStepOut(
                    course_id=p.course_id,
                    title=p.title,
                    level=p.level,
                    adds=[SkillOut(uri=a.uri, label=a.label) for a in p.adds],
                )
                for p in state.path
            ],
            phase=state.phase,
            language=state.language,
            turn=state.turn,
        )


class TurnOut(_Out):
    """One turn's result (also the ``done`` event of a streamed turn)."""

    reply: str
    profile: Profile
    recommendations: list[RecommendationOut] = Field(
        description="The list this turn showed, with explanations; empty when the turn showed none."
    )


class FeedbackOut(_Out):
    recorded: bool = True
    refresh: bool = Field(
        description="True after a dislike or taken: the list changed, ask for new courses to fill it."
    )
    profile: Profile


class OccupationMatch(_Out):
    uri: str
    label: str
    score: float
    matched_label: str = Field(description="The ESCO/BA label the query matched.")
    match: str = Field(description="Strongest signal: exact, fuzzy, dense or ba_hint.")


class OccupationResults(_Out):
    results: list[OccupationMatch]


# --- admin ------------------------------------------------------------------------------------------------


class SessionInfo(_Out):
    session_id: str
    created: datetime
    last_seen: datetime
    channel: str
    user_ref: str | None
    language: str | None
    turns: int

    @classmethod
    def from_record(cls, record: SessionRecord) -> SessionInfo:
        return cls(
            session_id=record.id,
            created=record.created,
            last_seen=record.last_seen,
            channel=record.channel,
            user_ref=record.user_ref,
            language=record.language,
            turns=record.turns,
        )


class SessionList(_Out):
    sessions: list[SessionInfo]
    total: int


class FeedbackEventOut(_Out):
    id: int
    session_id: str
    user_ref: str | None
    occupation_uri: str | None
    course_id: str
    verdict: str
    reason: str | None
    created: datetime

    @classmethod
    def from_event(cls, event: FeedbackEvent) -> FeedbackEventOut:
        return cls(**vars(event))


class SessionDetail(_Out):
    session: SessionInfo
    profile: Profile
    feedback: list[FeedbackEventOut]


class FeedbackExport(_Out):
    events: list[FeedbackEventOut]
    next_after_id: int = Field(
        description="Pass as after_id for the next page (same value: no newer events)."
    )


class Deleted(_Out):
    deleted: int


class Health(_Out):
    status: Literal["ok", "ready"]
    checks: dict[str, str] = Field(default_factory=dict)
