"""Fact sheets: built from the knowledge base (gap, covered = course skills ∩ gap, labels in the sheet's
language), catalog facts never guessed, inconsistent sheets refused."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from knowledge.store import KnowledgeBase
from tools.explain.facts import (
    CourseFact,
    FactSheet,
    OccupationFact,
    SheetError,
    SkillFact,
    build_fact_sheet,
    course_fact,
    format_duration,
)

pytestmark = [pytest.mark.data]


def _occupation_with_taught_skills(kb: KnowledgeBase, course_skills: dict[str, set[str]]) -> tuple[str, str]:
    """(occupation, course) where the course teaches at least two of the occupation's skills."""
    for occ in sorted(kb.occupation_skills):
        skills = {uri for uri, _ in kb.occupation_skills[occ]}
        for cid, uris in sorted(course_skills.items()):
            if len(uris & skills) >= 2:
                return occ, cid
    raise AssertionError("no course teaches two skills of one occupation")


def test_sheet_covers_course_skills_within_the_gap(
    kb: KnowledgeBase, course_skills: dict[str, set[str]]
) -> None:
    occ, cid = _occupation_with_taught_skills(kb, course_skills)
    relations = kb.occupation_skills[occ]
    taught = sorted(course_skills[cid] & {uri for uri, _ in relations})
    have = {taught[0]}  # the user already has one taught skill: it is not a gap, so not covered
    sheet = build_fact_sheet(kb, occ, cid, course_skills, have=have, max_gap=3)

    assert sheet.occupation == OccupationFact(uri=occ, label=kb.occupations[occ].label("en"))
    assert sheet.gap_total == len(relations) - 1
    assert {s.uri for s in sheet.covered} == set(taught) - have
    assert {s.uri for s in sheet.covered} <= {s.uri for s in sheet.gap}
    assert taught[0] not in sheet.skill_uris()
    assert len(sheet.gap) == max(3, len(sheet.covered))  # covered ones always listed, the rest up to max_gap
    essential = dict(relations)
    assert all(s.essential == (essential[s.uri] == "essential") for s in sheet.gap)
    assert sheet.course.title == kb.courses.set_index("id").loc[cid, "title"]
    rendered = sheet.render()
    assert sheet.course.title in rendered and all(s.label in rendered for s in sheet.covered)


def test_german_sheet_uses_german_labels(kb: KnowledgeBase, course_skills: dict[str, set[str]]) -> None:
    occ, cid = _occupation_with_taught_skills(kb, course_skills)
    sheet = build_fact_sheet(kb, occ, cid, course_skills, lang="de")
    assert sheet.language == "de" and "Write in German." in sheet.render()
    assert sheet.occupation.label == kb.occupations[occ].pref_de
    assert [s.label for s in sheet.gap] == [kb.skills[s.uri].label("de") for s in sheet.gap]
    assert any(s.label != kb.skills[s.uri].label("en") for s in sheet.gap)


def test_live_course_record_with_its_own_skills(kb: KnowledgeBase) -> None:
    occ = sorted(kb.occupation_skills)[0]
    skill = kb.occupation_skills[occ][0][0]
    record = {"id": "live:1", "title": "Schweißen  Grundkurs", "price": 0.0, "free": None, "level": "x"}
    sheet = build_fact_sheet(kb, occ, record, [skill], lang="de")
    assert sheet.course.title == "Schweißen Grundkurs" and sheet.course.level == "unknown"
    assert sheet.course.cost == "free" and [s.uri for s in sheet.covered] == [skill]


def test_bad_input_is_refused(kb: KnowledgeBase, course_skills: dict[str, set[str]]) -> None:
    occ, cid = _occupation_with_taught_skills(kb, course_skills)
    with pytest.raises(SheetError, match="unknown ESCO occupation"):
        build_fact_sheet(kb, "http://example.org/nope", cid, course_skills)
    with pytest.raises(SheetError, match="not in the catalog"):
        build_fact_sheet(kb, occ, "udemy:doesnotexist", course_skills)
    with pytest.raises(SheetError, match="unsupported explanation language"):
        build_fact_sheet(kb, occ, cid, course_skills, lang="fr")
    with pytest.raises(SheetError, match="needs an id and a title"):
        course_fact({"id": "x", "title": float("nan")})


def test_a_sheet_must_be_consistent() -> None:
    course = CourseFact(id="c", title="T")
    occupation = OccupationFact(uri="o", label="nurse")
    with pytest.raises(ValidationError, match="covered skills must be gap skills"):
        FactSheet(occupation=occupation, course=course, covered=[SkillFact(uri="s", label="x")])
    with pytest.raises(ValidationError, match="gap_total"):
        FactSheet(occupation=occupation, course=course, gap=[SkillFact(uri="s", label="x")], gap_total=0)
    with pytest.raises(ValidationError):
        FactSheet(occupation=occupation, course=course, invented="yes")  # type: ignore[call-arg]


def test_catalog_facts_are_never_guessed() -> None:
    nan = math.nan
    fact = course_fact(
        {"id": "c", "title": "T", "price": nan, "free": None, "currency": nan, "provider": nan}
    )
    assert (fact.cost, fact.price_text, fact.provider, fact.duration) == ("unknown", None, None, None)
    paid = course_fact({"id": "c", "title": "T", "price": 94.99, "currency": "EUR", "free": False})
    assert (paid.cost, paid.price_text) == ("paid", "94.99 EUR")
    assert course_fact({"id": "c", "title": "T", "price": 20.0, "free": False}).price_text == "20"
    assert course_fact({"id": "c", "title": "T", "price": 20.0, "free": True}).cost == "free"


@pytest.mark.parametrize(
    ("hours", "text", "lang", "expected"),
    [
        (0.733333, "0.733333 hours", "en", "44 minutes"),
        (3.5, "3.5 hours", "en", "3.5 hours"),
        (1.0, None, "en", "1 hour"),
        (2.5, None, "de", "2,5 Stunden"),
        (25.0, "5 Weeks, 4–6 hours per week", "en", "5 Weeks, 4–6 hours per week"),
        (math.nan, "1 - 3 Months", "en", "1 - 3 Months"),
        (None, None, "en", None),
    ],
)
def test_durations(hours: float | None, text: str | None, lang: str, expected: str | None) -> None:
    assert format_duration(hours, text, lang) == expected
