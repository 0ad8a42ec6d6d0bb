"""The fact sheet an explanation is written from: the only things an explanation may name.

A ``FactSheet`` holds one (occupation, course) pair as the advisor sees it: the occupation, the gap skills the
user still lacks (essential first), the course's catalog facts and which gap skills the course teaches
(course-skill table ∩ gap). Labels are in the sheet's language (ESCO has German preferred labels), so a
German sheet yields German skill names. ``render`` is the compact text the explanation model is prompted
with; the validator checks a generated text against ``allowed_texts``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from knowledge.store import KnowledgeBase
    from tools.retrieval.base import GapSkill

Language = Literal["en", "de"]
Level = Literal["beginner", "intermediate", "advanced", "mixed", "unknown"]
LANGUAGES: tuple[str, ...] = ("en", "de")
MAX_GAP = 8
_PLAIN_HOURS = re.compile(r"^\s*\d+(?:\.\d+)?\s*(?:hours?|h)\s*$", re.IGNORECASE)


class SheetError(ValueError):
    """The fact sheet cannot be built: unknown occupation or course, or an inconsistent sheet."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OccupationFact(_Strict):
    uri: str
    label: str = Field(min_length=1)


class SkillFact(_Strict):
    uri: str
    label: str = Field(min_length=1)
    essential: bool = False
    knowledge: bool = Field(False, description="ESCO knowledge (a noun: 'mathematics'), not a skill verb.")


class CourseFact(_Strict):
    """Catalog facts of the course; ``None`` where the catalog does not say (never guessed)."""

    id: str
    title: str = Field(min_length=1)
    provider: str | None = None
    level: Level = "unknown"
    duration: str | None = Field(None, description="Human-readable duration, as the sheet states it.")
    price: float | None = Field(None, ge=0)
    currency: str | None = None
    free: bool | None = None
    language: str | None = None
    url: str | None = None

    @property
    def cost(self) -> Literal["free", "paid", "unknown"]:
        if self.free is True or (self.free is None and self.price == 0):
            return "free"
        if self.price is not None and self.price > 0:
            return "paid"
        return "unknown"

    @property
    def price_text(self) -> str | None:
        """``"49.99 EUR"`` / ``"20"`` (no currency in the catalog) for a paid course, else ``None``."""
        if self.cost != "paid" or self.price is None:
            return None
        amount = f"{self.price:.0f}" if float(self.price).is_integer() else f"{self.price:.2f}"
        return f"{amount} {self.currency}" if self.currency else amount


class FactSheet(_Strict):
    """Everything an explanation of ``course`` for ``occupation`` may mention."""

    occupation: OccupationFact
    language: Language = "en"
    gap: list[SkillFact] = Field(
        default_factory=list, description="Gap skills shown (essential first, covered ones always included)."
    )
    gap_total: int = Field(0, ge=0, description="How many gap skills the user has in all.")
    course: CourseFact
    covered: list[SkillFact] = Field(default_factory=list, description="Gap skills the course teaches.")

    @model_validator(mode="after")
    def _consistent(self) -> FactSheet:
        gap = {s.uri for s in self.gap}
        stray = [s.label for s in self.covered if s.uri not in gap]
        if stray:
            raise ValueError(f"covered skills must be gap skills of the sheet: {stray}")
        if self.gap_total < len(self.gap):
            raise ValueError(f"gap_total {self.gap_total} < {len(self.gap)} gap skills listed")
        return self

    @property
    def key(self) -> str:
        """Stable identity of the sheet (seeds the template's paraphrase choice)."""
        raw = f"{self.occupation.uri}\x1f{self.course.id}\x1f{self.language}"
        return hashlib.sha1(raw.encode()).hexdigest()[:16]

    @property
    def uncovered(self) -> list[SkillFact]:
        covered = {s.uri for s in self.covered}
        return [s for s in self.gap if s.uri not in covered]

    def skill_uris(self) -> set[str]:
        return {s.uri for s in self.gap} | {s.uri for s in self.covered}

    def allowed_texts(self) -> list[str]:
        """Strings an explanation may quote or name: occupation, course title/provider, skills, logistics."""
        course = self.course
        texts = [self.occupation.label, course.title, *(s.label for s in self.gap)]
        texts += [t for t in (course.provider, course.duration, course.price_text) if t]
        return texts

    def allowed_numbers(self) -> set[str]:
        """Numbers an explanation may state: those of the sheet's facts and the counts derived from it."""
        numbers = {n for text in self.allowed_texts() for n in numbers_in(text)}
        numbers |= {str(n) for n in range(self.gap_total + 1)}
        return numbers

    def render(self) -> str:
        """The compact fact sheet the explanation model is prompted with (keys in English, values as is)."""
        course = self.course
        head = f'Course: "{course.title}"' + (f" by {course.provider}" if course.provider else "")
        logistics = [f"level {course.level}" if course.level != "unknown" else "level not stated"]
        logistics.append(f"duration {course.duration}" if course.duration else "duration not stated")
        cost = {"free": "free", "paid": f"price {course.price_text}", "unknown": "price not stated"}
        logistics.append(cost[course.cost])
        covered = "; ".join(_skill_text(s) for s in self.covered) or "none"
        others = "; ".join(_skill_text(s) for s in self.uncovered) or "none"
        lines = [
            f"Occupation: {self.occupation.label}",
            head,
            "Facts: " + ", ".join(logistics),
            f"Gap skills the course teaches: {covered}",
            f"Other gap skills ({self.gap_total - len(self.covered)} in all): {others}",
            f"Write in {'German' if self.language == 'de' else 'English'}.",
        ]
        return "\n".join(lines)


def _skill_text(skill: SkillFact) -> str:
    return skill.label + (" (essential)" if skill.essential else "")


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def numbers_in(text: str) -> list[str]:
    """Numbers as written (``1,5`` and ``1.5`` both read as ``1.5``)."""
    return [n.replace(",", ".") for n in _NUMBER.findall(text)]


def format_duration(hours: float | None, text: str | None, lang: str = "en") -> str | None:
    """The catalog's own wording, except bare hours ("0.733333 hours"), rounded and in ``lang``."""
    text = text.strip() if isinstance(text, str) else None
    has_hours = hours is not None and not (isinstance(hours, float) and math.isnan(hours)) and hours > 0
    if text and not (_PLAIN_HOURS.match(text) and has_hours):
        return text
    if not has_hours:
        return text or None
    assert hours is not None
    de = lang == "de"
    if hours < 1:
        return f"{max(1, round(hours * 60))} {'Minuten' if de else 'minutes'}"
    rounded = round(hours * 2) / 2
    amount = f"{rounded:.0f}" if rounded.is_integer() else f"{rounded:.1f}"
    if de:
        return f"{amount.replace('.', ',')} {'Stunde' if amount == '1' else 'Stunden'}"
    return f"{amount} hour" if amount == "1" else f"{amount} hours"


def _clean(value: Any) -> Any:
    """pandas' NaN/None/NA → ``None``."""
    if value is None:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
    except TypeError:
        return value
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def course_fact(record: Mapping[str, Any], lang: str = "en") -> CourseFact:
    """A ``CourseFact`` from a catalog row or a ``Course`` dump (fields as in ``knowledge.courses.schema``);
    ``lang`` is the language durations are worded in."""
    get = lambda name: _clean(record.get(name))  # noqa: E731 - tiny local accessor
    if not get("id") or not get("title"):
        raise SheetError(f"a course record needs an id and a title, got {dict(record)!r:.200}")
    level = get("level") or "unknown"
    free = get("free")
    price = get("price")
    return CourseFact(
        id=str(get("id")),
        title=" ".join(str(get("title")).split()),
        provider=get("provider") or None,
        level=level if level in ("beginner", "intermediate", "advanced", "mixed") else "unknown",
        duration=format_duration(get("duration_hours"), get("duration_text"), lang),
        price=float(price) if price is not None else None,
        currency=get("currency") or None,
        free=bool(free) if free is not None else None,
        language=get("language") or None,
        url=get("url") or None,
    )


@lru_cache(maxsize=2)
def _course_rows(kb: KnowledgeBase) -> dict[str, int]:
    return {cid: i for i, cid in enumerate(kb.courses.id)}


def catalog_course(kb: KnowledgeBase, course_id: str, lang: str = "en") -> CourseFact:
    position = _course_rows(kb).get(course_id)
    if position is None:
        raise SheetError(f"course {course_id!r} is not in the catalog of snapshot {kb.manifest.version}")
    return course_fact(kb.courses.iloc[position].to_dict(), lang)


def build_fact_sheet(
    kb: KnowledgeBase,
    occupation_uri: str,
    course: str | CourseFact | Mapping[str, Any],
    course_skills: Mapping[str, Iterable[str]] | Iterable[str],
    *,
    have: Iterable[str] = (),
    gap: list[GapSkill] | None = None,
    lang: str = "en",
    max_gap: int = MAX_GAP,
) -> FactSheet:
    """The sheet for ``course`` (catalog id, ``CourseFact`` or course record) as advice for an occupation.

    ``course_skills`` is the course→skills table (``load_course_skills``) or the course's own skill URIs (a
    live course); ``gap`` is the query's gap when the caller has it (else the occupation's skills minus
    ``have``). Covered = course skills ∩ gap; the sheet lists them plus the first other gap skills up to
    ``max_gap``.
    """
    from tools.retrieval.query import skill_gap

    if lang not in LANGUAGES:
        raise SheetError(f"unsupported explanation language {lang!r}: {', '.join(LANGUAGES)}")
    concept = kb.occupations.get(occupation_uri)
    if concept is None:
        raise SheetError(f"unknown ESCO occupation {occupation_uri!r}")
    if isinstance(course, str):
        fact = catalog_course(kb, course, lang)
    elif isinstance(course, CourseFact):
        fact = course
    else:
        fact = course_fact(course, lang)
    own = course_skills.get(fact.id, ()) if isinstance(course_skills, Mapping) else course_skills
    skills = set(own)
    full = gap if gap is not None else skill_gap(kb, occupation_uri, set(have), lang)
    facts = [_skill_fact(kb, g.uri, g.label, g.essential, lang) for g in full]
    covered = [s for s in facts if s.uri in skills]
    others = [s for s in facts if s.uri not in skills][: max(0, max_gap - len(covered))]
    shown = {s.uri for s in covered} | {s.uri for s in others}
    return FactSheet(
        occupation=OccupationFact(uri=occupation_uri, label=concept.label(lang)),
        language=lang,  # type: ignore[arg-type]
        gap=[s for s in facts if s.uri in shown],
        gap_total=len(facts),
        course=fact,
        covered=covered,
    )


def _skill_fact(kb: KnowledgeBase, uri: str, label: str, essential: bool, lang: str) -> SkillFact:
    concept = kb.skills.get(uri)
    if concept is None:
        return SkillFact(uri=uri, label=label, essential=essential)
    knowledge = concept.skill_type == "knowledge"
    return SkillFact(uri=uri, label=concept.label(lang), essential=essential, knowledge=knowledge)
