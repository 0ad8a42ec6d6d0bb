"""``TurnUpdate``: what one user message asks of the advisor — the one contract both understanding paths (the
deterministic parser and an instruction-following LLM's structured output) produce and the graph consumes.

It holds the user's *words* (occupation and skill phrases), never ESCO URIs: resolving words to ESCO is the
lookup tools' job on either path, so an LLM can never put an invented concept into the state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PHRASES = 40
MAX_PHRASE_CHARS = 8000  # a pasted CV is one phrase


class Intent(StrEnum):
    GREET = "greet"
    HELP = "help"
    SET_GOAL = "set_goal"  # names (or changes) the target occupation
    CHOOSE = "choose"  # picks one of the occupation candidates offered
    TELL_SKILLS = "tell_skills"  # skills the user has (free text, a list, a pasted CV)
    NO_SKILLS = "no_skills"  # "nothing yet": recommend for the whole gap
    RECOMMEND = "recommend"  # asks for courses
    REFINE = "refine"  # changes preferences or skips skills
    FEEDBACK = "feedback"  # likes / dislikes / has taken a shown course
    MORE_LIKE = "more_like"  # "more like the second one"
    WHY = "why"  # "why this one?"
    QUESTION = "question"  # about an occupation or a skill
    PROFILE = "profile"  # "what do you know about me?"
    LANGUAGE = "language"  # switch the reply language
    RESET = "reset"  # start over
    OTHER = "other"


class PreferenceChange(BaseModel):
    """Only the fields the message changes are set; None means "unchanged"."""

    model_config = ConfigDict(extra="forbid")

    free_only: bool | None = None
    cheaper: bool = Field(False, description="'cheaper': lower the price ceiling below the latest list.")
    price_max: float | None = Field(None, ge=0)
    languages: list[Literal["en", "de"]] | None = Field(None, description="Course languages wanted.")
    level: Literal["beginner", "intermediate", "advanced"] | None = None
    formats: list[Literal["online", "in-person", "blended"]] | None = None
    location: str | None = Field(None, max_length=80)
    hours_per_week: float | None = Field(None, gt=0, le=80)

    def empty(self) -> bool:
        return self == PreferenceChange()


class TurnUpdate(BaseModel):
    """The validated meaning of one message."""

    model_config = ConfigDict(extra="forbid")

    intent: Intent
    occupation: str | None = Field(None, max_length=200, description="The user's words for the target job.")
    choice: int | None = Field(None, ge=1, le=20, description="1-based pick among the offered occupations.")
    skills_have: list[str] = Field(default_factory=list, description="Phrases naming skills the user has.")
    skills_skip: list[str] = Field(default_factory=list, description="Skills/topics the user does not want.")
    preferences: PreferenceChange = Field(default_factory=PreferenceChange)
    course_ref: int | None = Field(None, ge=1, le=50, description="1-based position in the latest list.")
    verdict: Literal["like", "dislike", "taken"] | None = None
    topic: str | None = Field(None, max_length=200, description="What a question is about.")
    reply_language: Literal["en", "de"] | None = None
    wants_courses: bool = Field(False, description="The message also asks for courses now.")

    @field_validator("skills_have", "skills_skip")
    @classmethod
    def _phrases(cls, value: list[str]) -> list[str]:
        # spaces collapsed within lines; line breaks kept (a pasted list or CV is read line by line)
        cleaned = [
            "\n".join(" ".join(line.split()) for line in p.splitlines() if line.strip())[:MAX_PHRASE_CHARS]
            for p in value
            if p and p.strip()
        ]
        return cleaned[:MAX_PHRASES]
