"""Beyond one list: how much of the gap a set of courses covers, and an ordered learning path through it.

The path is a greedy set cover of the essential gap skills (few courses, each adding the most essential
skills not yet covered), ordered beginner → advanced so the user starts with what the later courses assume.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from tools.recommend import CoveredSkill, Recommendation
from tools.retrieval.base import GapSkill

LEVEL_ORDER = {"beginner": 0, "mixed": 1, "unknown": 1, "intermediate": 2, "advanced": 3}


class GapCoverage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    essential_total: int
    essential_covered: int
    total: int
    covered: int
    missing_essential: list[CoveredSkill]


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    course_id: str
    title: str
    level: str | None
    adds: list[CoveredSkill]


def coverage(courses: Sequence[Recommendation], gap: Sequence[GapSkill]) -> GapCoverage:
    taught = {s.uri for c in courses for s in c.covers}
    essential = [g for g in gap if g.essential]
    return GapCoverage(
        essential_total=len(essential),
        essential_covered=sum(g.uri in taught for g in essential),
        total=len(gap),
        covered=sum(g.uri in taught for g in gap),
        missing_essential=[CoveredSkill(uri=g.uri, label=g.label) for g in essential if g.uri not in taught],
    )


def learning_path(courses: Sequence[Recommendation], gap: Sequence[GapSkill]) -> list[Step]:
    """Courses that together cover the essential gap skills the list covers (optional ones when no essential
    skill is covered), fewest first-picked, then ordered by level (stable in the list's order)."""
    wanted = {g.uri for g in gap if g.essential}
    if not any(s.uri in wanted for c in courses for s in c.covers):
        wanted = {g.uri for g in gap}
    remaining = list(courses)
    covered: set[str] = set()
    chosen: list[tuple[Recommendation, list[CoveredSkill]]] = []
    while remaining:
        best = max(remaining, key=lambda c: len({s.uri for s in c.covers} & (wanted - covered)))
        adds = [s for s in best.covers if s.uri in wanted - covered]
        if not adds:
            break
        chosen.append((best, adds))
        covered |= {s.uri for s in adds}
        remaining.remove(best)
    position = {c.course_id: i for i, c in enumerate(courses)}
    chosen.sort(
        key=lambda pair: (LEVEL_ORDER.get(pair[0].level or "unknown", 1), position[pair[0].course_id])
    )
    return [Step(course_id=c.course_id, title=c.title, level=c.level, adds=adds) for c, adds in chosen]
