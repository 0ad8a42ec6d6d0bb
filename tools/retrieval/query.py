"""Builds the retrieval query from the target occupation, the skills the user already has and preferences.

Only the **missing** skills go into the query (a skill the user has must not attract courses); essential
skills come first and are repeated so lexical scoring weighs them over optional ones.
"""

from __future__ import annotations

from knowledge.store import KnowledgeBase
from tools.retrieval.base import Filters, GapSkill, RetrievalQuery
from tools.retrieval.filters import default_languages

ESSENTIAL_REPEAT = 2
MAX_GAP_SKILLS = 40


def skill_gap(kb: KnowledgeBase, occupation_uri: str, have: set[str], lang: str = "en") -> list[GapSkill]:
    """The occupation's skills minus those the user has, essential first (ESCO order within each group)."""
    gap = [
        GapSkill(uri=uri, label=kb.skills[uri].label(lang), essential=relation == "essential")
        for uri, relation in kb.occupation_skills.get(occupation_uri, [])
        if uri not in have
    ]
    return sorted(gap, key=lambda g: not g.essential)


def build_query(
    kb: KnowledgeBase,
    occupation_uri: str,
    have: set[str] | None = None,
    *,
    lang: str = "en",
    filters: Filters | None = None,
) -> RetrievalQuery:
    concept = kb.occupations[occupation_uri]
    gap = skill_gap(kb, occupation_uri, have or set(), lang)
    label = concept.label(lang)
    parts = [label, label, concept.description(lang)]
    for skill in gap[:MAX_GAP_SKILLS]:
        parts.extend([skill.label] * (ESSENTIAL_REPEAT if skill.essential else 1))
    filters = filters or Filters()
    if filters.languages is None:
        filters = filters.model_copy(update={"languages": default_languages(lang)})
    return RetrievalQuery(
        occupation_uri=occupation_uri,
        occupation_label=label,
        occupation_description=concept.description(lang),
        gap=gap,
        text=". ".join(p for p in parts if p),
        lang=lang,
        filters=filters,
    )
