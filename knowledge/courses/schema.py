"""The one normalized course record every catalog adapter produces."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Format = Literal["online", "in-person", "blended", "unknown"]
Level = Literal["beginner", "intermediate", "advanced", "mixed", "unknown"]


def normalize_title(title: str) -> str:
    """Lower-case, non-alphanumerics collapsed to one space: the key the gold set and dedup use."""
    return re.sub(r"[^0-9a-zäöüß]+", " ", title.lower()).strip()


def course_id(source: str, source_id: str) -> str:
    """Stable id: the same source record always gets the same id across rebuilds."""
    digest = hashlib.sha1(f"{source}\x1f{source_id}".encode()).hexdigest()[:16]
    return f"{source}:{digest}"


class Course(BaseModel):
    """A course from any catalog; fields a source does not know stay ``None``/empty."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable id, see ``course_id``.")
    source: str = Field(description="Catalog adapter name, e.g. 'coursera', 'edx', 'arbeitsagentur'.")
    source_id: str = Field(description="The record's id within its source (or its URL when none).")
    url: str | None = None
    title: str
    description: str | None = Field(None, description="Plain text (HTML stripped); None if absent.")
    provider: str | None = None
    language: str | None = Field(None, description="ISO 639-1 code, e.g. 'en', 'de'.")
    level: Level = "unknown"
    duration_hours: float | None = None
    duration_text: str | None = Field(None, description="Duration as the source states it.")
    price: float | None = None
    currency: str | None = None
    free: bool | None = None
    format: Format = "unknown"
    location: str | None = None
    start_dates: list[date] = Field(default_factory=list)
    raw_skills: list[str] = Field(default_factory=list, description="Skills/tags as the source lists them.")
    esco_skills: list[str] = Field(default_factory=list, description="ESCO skill URIs from the source.")
    has_description: bool = Field(False, description="False rows are kept but excluded from retrieval.")
    also_in: list[str] = Field(default_factory=list, description="Ids of duplicates merged into this record.")

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("title is empty")
        return value

    def model_post_init(self, __context: object) -> None:
        self.has_description = bool(self.description and self.description.strip())
