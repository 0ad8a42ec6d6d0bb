"""The retrieval contract every system implements, so the agent, ``craft recommend`` and ``craft eval``
can swap systems (BM25, dense, hybrid, trained retrievers, rerankers) without knowing which one runs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Filters(BaseModel):
    """Hard constraints; a course that breaks one is never returned (no padding)."""

    model_config = ConfigDict(extra="forbid")

    languages: list[str] | None = Field(None, description="Course languages allowed, e.g. ['de', 'en'].")
    price_max: float | None = Field(None, ge=0)
    free_only: bool = False
    levels: list[str] | None = None
    formats: list[Literal["online", "in-person", "blended", "unknown"]] | None = None
    providers: list[str] | None = None
    sources: list[str] | None = None
    require_description: bool = Field(True, description="Title-only records are excluded unless False.")


class GapSkill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str
    label: str
    essential: bool


class RetrievalQuery(BaseModel):
    """What to find courses for: the occupation and the skills still missing (the user's skills removed)."""

    model_config = ConfigDict(extra="forbid")

    occupation_uri: str | None = None
    occupation_label: str = ""
    occupation_description: str = ""
    gap: list[GapSkill] = Field(default_factory=list, description="Missing skills, essential first.")
    text: str = Field("", description="The query text the builder composed from the fields above.")
    lang: str = "en"
    filters: Filters = Field(default_factory=Filters)


class ScoredCourse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    course_id: str
    score: float


class Retriever(ABC):
    """One public method; ``name`` is the key in the system registry and in evaluation reports."""

    name: str

    @abstractmethod
    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        """Top-k course ids, best first, all satisfying ``query.filters``."""
