"""Re-ranking for diversity: the top-k should cover the skill gap, not repeat near-identical courses.

``coverage_rerank`` greedily picks the course that adds the most not-yet-covered gap skills (essential
weighted 2, optional 1), mixed with its relevance; ``mmr`` is the classic maximal marginal relevance on
vectors, for courses without skill annotations.
"""

from __future__ import annotations

import numpy as np

from tools.retrieval.base import GapSkill, ScoredCourse


def _normalized(hits: list[ScoredCourse]) -> dict[str, float]:
    if not hits:
        return {}
    scores = np.array([h.score for h in hits], dtype=float)
    low, high = scores.min(), scores.max()
    span = high - low if high > low else 1.0
    return {h.course_id: float((h.score - low) / span) for h in hits}


def coverage_rerank(
    hits: list[ScoredCourse],
    course_skills: dict[str, set[str]],
    gap: list[GapSkill],
    k: int,
    *,
    weight: float = 0.5,
) -> list[ScoredCourse]:
    """Greedy set-cover with relevance: ``weight`` trades new gap coverage against the original score."""
    relevance = _normalized(hits)
    value = {g.uri: 2.0 if g.essential else 1.0 for g in gap}
    total = sum(value.values()) or 1.0
    covered: set[str] = set()
    remaining = list(hits)
    chosen: list[ScoredCourse] = []
    while remaining and len(chosen) < k:
        open_skills = set(value) - covered

        def gain(hit: ScoredCourse, open_skills: set[str] = open_skills) -> float:
            new = course_skills.get(hit.course_id, set()) & open_skills
            return (1 - weight) * relevance[hit.course_id] + weight * sum(
                value[s] for s in new
            ) / total * len(value)

        best = max(remaining, key=lambda h: (gain(h), h.score, h.course_id))
        remaining.remove(best)
        covered |= course_skills.get(best.course_id, set()) & set(value)
        chosen.append(best)
    return chosen


def mmr(
    hits: list[ScoredCourse], vectors: dict[str, np.ndarray], k: int, *, lambda_: float = 0.7
) -> list[ScoredCourse]:
    """Maximal marginal relevance: relevance minus similarity to what is already chosen."""
    relevance = _normalized(hits)
    remaining = [h for h in hits if h.course_id in vectors]
    chosen: list[ScoredCourse] = []
    while remaining and len(chosen) < k:

        def score(hit: ScoredCourse) -> float:
            if not chosen:
                return relevance[hit.course_id]
            similarity = max(float(vectors[hit.course_id] @ vectors[c.course_id]) for c in chosen)
            return lambda_ * relevance[hit.course_id] - (1 - lambda_) * similarity

        best = max(remaining, key=lambda h: (score(h), h.course_id))
        remaining.remove(best)
        chosen.append(best)
    return chosen
