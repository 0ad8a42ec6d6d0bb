"""Occupation and skill lookup: the first agent tools. Typed in, typed out, and never a crash on user text.

``find_occupations`` / ``find_skills`` accept any user text: empty or nonsense gives an empty list; text
that is not a string or is longer than ``MAX_QUERY_CHARS`` raises ``InvalidQuery`` with a message meant
for the user.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings, get_settings
from knowledge.encoders import get_encoder
from knowledge.indexes import open_index
from knowledge.store import KnowledgeBase, get_knowledge
from tools.linking import Linker, Match

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 4000
Lang = Literal["en", "de"]


class InvalidQuery(ValueError):
    """Input that cannot be looked up; ``str(error)`` is safe to show to the user."""


class Candidate(BaseModel):
    """A ranked concept for a piece of user text."""

    model_config = ConfigDict(extra="forbid")

    uri: str
    label: str = Field(description="Preferred label in the requested language (falls back to the other).")
    score: float = Field(ge=0, le=1)
    matched_label: str = Field(description="The ESCO/BA label the text matched.")
    match: str = Field(description="Strongest signal: exact, fuzzy, dense or ba_hint.")


class SkillRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str
    label: str
    skill_type: str
    essential: bool


class Occupation(BaseModel):
    """An ESCO occupation with its skills, essential first (the gap computation relies on that order)."""

    model_config = ConfigDict(extra="forbid")

    uri: str
    label: str
    description: str
    isco_group: str
    essential_skills: list[SkillRef]
    optional_skills: list[SkillRef]
    ba_codes: list[str] = Field(default_factory=list, description="BA/BERUFENET occupation ids (KldB based).")


class SkillMention(Candidate):
    """A skill found in free text, with the user's own words."""

    span: str = Field(description="The user's wording the skill was found in.")
    skill_type: str


def _validate(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidQuery(f"Please send text; got {type(text).__name__}.")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQuery(
            f"That text is {len(text):,} characters long; please keep it under {MAX_QUERY_CHARS:,}."
        )
    return text.strip()


def _lang(lang: str | None) -> Lang:
    return "de" if lang == "de" else "en"


class Lookup:
    """Holds the two linkers over the current snapshot; one per process (see ``get_lookup``)."""

    def __init__(self, settings: Settings, kb: KnowledgeBase) -> None:
        self.settings, self.kb = settings, kb
        encoder = get_encoder(settings.linker_model, settings)
        labels = kb.labels
        indexes = {kind: open_index(settings, kb, kind, encoder) for kind in ("occupation", "skill")}
        for index in indexes.values():
            if not index.count:
                # e.g. right after `craft train linker`: its vectors go into new indexes (`craft index build`)
                log.warning(
                    "label index %s of %s is empty: linking runs without the dense signal until "
                    "`craft index build`",
                    index.name,
                    encoder.name,
                )
        self.occupations = Linker(
            labels[labels.kind == "occupation"],
            index=indexes["occupation"],
            encoder=encoder,
            hints=kb.title_hints,
        )
        self.skills = Linker(labels[labels.kind == "skill"], index=indexes["skill"], encoder=encoder)

    def candidate(self, match: Match, lang: Lang) -> Candidate:
        concept = self.kb.occupations.get(match.uri) or self.kb.skills[match.uri]
        return Candidate(
            uri=match.uri,
            label=concept.label(lang),
            score=round(min(1.0, match.score), 4),
            matched_label=match.matched_label,
            match=match.signal,
        )


@lru_cache(maxsize=2)
def _lookup(settings_key: str) -> Lookup:
    settings = get_settings()
    return Lookup(settings, get_knowledge(settings))


def get_lookup(settings: Settings | None = None) -> Lookup:
    settings = settings or get_settings()
    return _lookup(f"{settings.store_dir.resolve()}|{settings.model_dir.resolve()}|{settings.index_sample}")


def find_occupations(text: str, lang: str | None = "en", k: int = 5) -> list[Candidate]:
    """Ranked ESCO occupations for a job title, EN or DE (typos, gender forms, BA titles, abbreviations)."""
    query = _validate(text)
    if not query:
        return []
    lookup = get_lookup()
    return [lookup.candidate(m, _lang(lang)) for m in lookup.occupations.link(query, k=k)]


def get_occupation(uri: str, lang: str | None = "en") -> Occupation | None:
    """The occupation with its essential and optional skills, or None for an unknown URI."""
    if not isinstance(uri, str):
        raise InvalidQuery("An occupation URI must be text.")
    kb = get_knowledge()
    concept = kb.occupations.get(uri.strip())
    if concept is None:
        return None
    language = _lang(lang)
    essential, optional = [], []
    for skill_uri, relation in kb.occupation_skills.get(concept.uri, []):
        skill = kb.skills[skill_uri]
        ref = SkillRef(
            uri=skill_uri,
            label=skill.label(language),
            skill_type=skill.skill_type,
            essential=relation == "essential",
        )
        (essential if ref.essential else optional).append(ref)
    return Occupation(
        uri=concept.uri,
        label=concept.label(language),
        description=concept.description(language),
        isco_group=concept.isco_group,
        essential_skills=essential,
        optional_skills=optional,
        ba_codes=sorted({code for code, _, _ in kb.ba_codes.get(concept.uri, [])}),
    )


# Phrases people put around skills ("I know", "some", "Kenntnisse in") carry no skill themselves.
_FILLERS = re.compile(
    r"\b(?:i(?:'m| am)? (?:know|knew|can|did|do|have|had|used|use|learned|learnt"
    r"|worked (?:with|on|in)|am good at)"
    r"|(?:some|basic|good|solid|strong|advanced|a (?:bit|little) of|experience (?:in|with)"
    r"|knowledge of|skills? in)"
    r"|ich (?:kann|habe|kenne|beherrsche)|(?:gute|grundlegende|erste|sehr gute)? ?kenntnisse (?:in|im|von)"
    r"|erfahrung (?:in|mit|im)|etwas|ein bisschen)\b",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"[,;\n•·|]+|\s[-–]\s|\b(?:and|or|as well as|plus|und|oder|sowie)\b", re.IGNORECASE)


def _segments(text: str) -> list[str]:
    parts = []
    for raw in _SPLIT.split(text):
        part = _FILLERS.sub(" ", raw)
        part = re.sub(r"^[\s.:()\-]+|[\s.:()\-]+$", "", " ".join(part.split()))
        if len(part) >= 2 and len(part.split()) <= 8:
            parts.append(part)
    return parts


def find_skills(
    text: str, lang: str | None = "en", k: int = 10, min_score: float = 0.6
) -> list[SkillMention]:
    """ESCO skills in a phrase, a sentence with several skills, or a pasted CV; one mention per skill."""
    query = _validate(text)
    if not query:
        return []
    lookup = get_lookup()
    language = _lang(lang)
    segments = _segments(query)
    single = len(segments) <= 1
    found: dict[str, SkillMention] = {}
    for segment in segments or [query]:
        matches = lookup.skills.link(segment, k=k if single else 1)
        for match in matches:
            if match.score < min_score or (match.uri in found and found[match.uri].score >= match.score):
                continue
            base = lookup.candidate(match, language)
            found[match.uri] = SkillMention(
                **base.model_dump(), span=segment, skill_type=lookup.kb.skills[match.uri].skill_type
            )
    return sorted(found.values(), key=lambda m: -m.score)[: max(k, len(segments))]
