"""The retrievable course corpus: one text per course, in catalog order, with a content hash per course so
indexes can be updated incrementally (a changed description re-embeds one course, not the catalog)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from knowledge.store import KnowledgeBase
from tools.retrieval.base import Filters
from tools.retrieval.filters import apply_filters

MAX_DESCRIPTION_CHARS = 1500


def course_text(title: str, description: str | None, skills: list[str] | np.ndarray | None) -> str:
    """Title, then the start of the description, then listed skills: what the encoders and BM25 see."""
    parts = [title]
    if isinstance(description, str) and description:
        parts.append(description[:MAX_DESCRIPTION_CHARS])
    if skills is not None and len(skills):
        parts.append("Skills: " + ", ".join(str(s) for s in list(skills)[:30]))
    return "\n".join(parts)


@dataclass
class CourseCorpus:
    courses: pd.DataFrame

    @classmethod
    def from_knowledge(cls, kb: KnowledgeBase) -> CourseCorpus:
        return cls(kb.courses.reset_index(drop=True))

    @cached_property
    def ids(self) -> list[str]:
        return self.courses.id.tolist()

    @cached_property
    def position(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.ids)}

    @cached_property
    def texts(self) -> list[str]:
        return [
            course_text(t, d, s)
            for t, d, s in zip(
                self.courses.title, self.courses.description, self.courses.raw_skills, strict=True
            )
        ]

    @cached_property
    def hashes(self) -> list[str]:
        return [hashlib.sha1(t.encode()).hexdigest()[:16] for t in self.texts]

    def mask(self, filters: Filters) -> np.ndarray:
        return apply_filters(self.courses, filters)
