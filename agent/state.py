"""The advisor's conversation state: what the user wants, knows and prefers, and what was shown to them.

Everything here is checkpointed per conversation id (``agent.memory``), so a returning user continues where
they left off. The phase is never stored by hand: ``next_phase`` derives it from the rest of the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field

from tools.retrieval.base import Filters

Lang = Literal["en", "de"]
Verdict = Literal["like", "dislike", "taken"]


class Phase(StrEnum):
    """Where the conversation stands; decides what the advisor asks for next."""

    GOAL = "goal"  # no target occupation yet (or candidates to choose from)
    SKILLS = "skills"  # occupation known, the user's skills not asked for yet
    RECOMMEND = "recommend"  # skills known, no list on screen: the next request recommends
    REFINE = "refine"  # a list is shown; the user refines, asks why, gives feedback


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OccupationRef(_Model):
    uri: str = Field(description="ESCO occupation URI.")
    label: str = Field(description="Preferred label in the conversation's language.")


class OccupationCandidate(OccupationRef):
    score: float = Field(ge=0, le=1, description="Lookup confidence; close scores make the user choose.")


class KnownSkill(_Model):
    uri: str = Field(description="ESCO skill URI.")
    label: str
    wording: str = Field(description="The user's own words the skill was understood from.")
    confidence: float = Field(ge=0, le=1)


class SkippedSkill(_Model):
    uri: str
    label: str
    wording: str = Field(description="What the user said they are not interested in.")


class GapItem(_Model):
    uri: str
    label: str
    essential: bool


class Preferences(_Model):
    """The user's constraints on courses, applied as hard filters: a course that breaks one is never shown."""

    free_only: bool = False
    price_max: float | None = Field(None, ge=0)
    languages: list[Lang] | None = Field(
        None, description="Course languages; None: the user's language + en."
    )
    levels: list[str] | None = Field(None, description="Course levels allowed, e.g. ['beginner'].")
    formats: list[Literal["online", "in-person", "blended"]] | None = None
    location: str | None = Field(None, description="Where in-person courses should be (live search).")
    hours_per_week: float | None = Field(None, gt=0, le=80)

    def filters(self) -> Filters:
        return Filters(
            languages=list(self.languages) if self.languages else None,
            price_max=self.price_max,
            free_only=self.free_only,
            levels=self.levels,
            formats=list(self.formats) if self.formats else None,
        )

    def describe(self) -> list[str]:
        """Short English tags of the active preferences (the reply composer translates them)."""
        tags = []
        if self.free_only:
            tags.append("free")
        if self.price_max is not None:
            tags.append(f"price ≤ {self.price_max:g}")
        if self.languages:
            tags.append("language " + "/".join(self.languages))
        if self.levels:
            tags.append("level " + "/".join(self.levels))
        if self.formats:
            tags.append("/".join(self.formats))
        if self.location:
            tags.append(self.location)
        return tags


class Covered(_Model):
    uri: str
    label: str


class ShownCourse(_Model):
    """A recommendation as shown to the user, with the user's verdict once given."""

    course_id: str
    source: str
    url: str | None = None
    title: str
    provider: str | None = None
    language: str | None = None
    level: str | None = None
    format: str | None = None
    price: float | None = None
    currency: str | None = None
    free: bool | None = None
    score: float
    covers: list[Covered] = Field(default_factory=list, description="Gap skills this course teaches.")
    explanation: str | None = None
    explanation_source: Literal["model", "template"] | None = None
    turn: int = Field(0, description="The turn it was shown in.")
    feedback: Verdict | None = None


class PathStep(_Model):
    course_id: str
    title: str
    level: str | None = None
    adds: list[Covered] = Field(description="Essential gap skills this step adds to the ones before it.")


class Coverage(_Model):
    """How much of the gap the recommended set teaches (essential skills count first)."""

    essential_total: int
    essential_covered: int
    total: int
    covered: int
    missing_essential: list[Covered] = Field(default_factory=list)

    @property
    def essential_share(self) -> float:
        return self.essential_covered / self.essential_total if self.essential_total else 1.0


@dataclass
class AdvisorState:
    """One conversation. Fields set by the ``understand`` node each turn are cleared at the next turn."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """The dialogue, user and advisor turns (the user's text as sent; replies as shown)."""

    language: Lang = "en"
    """The language replies are written in: detected per message; pinned once the user asks for one."""

    language_pinned: bool = False
    """True after "answer in German" / "auf Englisch": detection no longer switches the language."""

    occupation: OccupationRef | None = None
    """The target occupation (ESCO) once resolved."""

    candidates: list[OccupationCandidate] = field(default_factory=list)
    """Occupations still in play when the user's words matched several closely; cleared on a choice."""

    skills_have: list[KnownSkill] = field(default_factory=list)
    """Skills the user has, each with their own wording and the lookup confidence."""

    skills_skip: list[SkippedSkill] = field(default_factory=list)
    """Skills the user is not interested in: removed from the gap, never a reason to recommend a course."""

    skills_done: bool = False
    """The user told their skills, declined ("nothing yet") or asked for courses: from now on we recommend."""

    gap: list[GapItem] = field(default_factory=list)
    """The occupation's skills minus those the user has or skips, essential first."""

    preferences: Preferences = field(default_factory=Preferences)
    """Budget, language of instruction, level, format, location, time per week."""

    shown: list[ShownCourse] = field(default_factory=list)
    """Every recommendation shown so far (all turns), with the user's feedback."""

    current: list[str] = field(default_factory=list)
    """Course ids of the latest list, in the order shown ("the second one" refers to it)."""

    coverage: Coverage | None = None
    """Gap coverage of the latest list."""

    path: list[PathStep] = field(default_factory=list)
    """Ordered learning path (beginner → advanced) through the latest list."""

    turn: int = 0
    """Number of user messages so far."""

    intent: str | None = None
    """This turn's understood intent (``agent.understand.Intent``); routes the graph."""

    update: dict[str, Any] | None = None
    """This turn's validated state update (``TurnUpdate`` as JSON), from the parser or the LLM."""

    reply: str = ""
    """This turn's reply text (also appended to ``messages``)."""

    notices: list[str] = field(default_factory=list)
    """This turn's remarks to the user (few courses left after filters, unknown skill, live search)."""

    phase: Phase = Phase.GOAL
    """Derived by ``next_phase`` after every turn."""


def next_phase(state: AdvisorState) -> Phase:
    """The phase implied by the state: a pure function, so a restored conversation lands where it was."""
    if state.occupation is None:
        return Phase.GOAL
    if state.current:
        return Phase.REFINE
    if not state.skills_done:
        return Phase.SKILLS
    return Phase.RECOMMEND  # skills known, no list on screen (a new goal, or filters left nothing)
