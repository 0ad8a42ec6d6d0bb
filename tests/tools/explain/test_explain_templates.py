"""Template explanations name only fact-sheet facts (checked over many real EN/DE sheets with the validator),
stay within the 60-token budget, vary their wording, and handle free / paid / unknown price and level."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tools.explain.facts import CourseFact, FactSheet, OccupationFact, SkillFact
from tools.explain.templates import MAX_TOKENS, approx_tokens, template_explanation
from tools.explain.validate import FaithfulnessChecker

pytestmark = [pytest.mark.data]


def test_templates_only_name_sheet_facts(
    real_sheets: list[FactSheet], checker: FaithfulnessChecker, smol_tokens: Callable[[str], int]
) -> None:
    failures = []
    for sheet in real_sheets:
        for variant in range(3):
            text = template_explanation(sheet, variant=variant, count_tokens=smol_tokens)
            verdict = checker.check(text, sheet)
            if not verdict.ok:
                failures.append((text, verdict.reasons))
            assert not re.search(r"\b(?:nan|NaN)\b|\bNone\b(?! of your)", text), text  # no missing value
            covered = [s.label for s in sheet.covered]
            if covered:
                assert any(label in text for label in covered), text
    assert not failures, failures[:5]
    languages = {s.language for s in real_sheets}
    assert languages == {"en", "de"} and any(not s.covered for s in real_sheets)


def test_templates_are_deterministic_and_varied(real_sheets: list[FactSheet]) -> None:
    sheet = next(s for s in real_sheets if s.language == "en" and s.covered)
    assert template_explanation(sheet) == template_explanation(sheet)
    variants = {template_explanation(sheet, variant=v) for v in range(8)}
    assert len(variants) >= 3
    openings = {" ".join(template_explanation(s).split()[:2]) for s in real_sheets if s.language == "en"}
    assert len(openings) >= 5


def _sheet(**course: object) -> FactSheet:
    skills = [
        SkillFact(uri="s1", label="manage budgets", essential=True),
        SkillFact(uri="s2", label="accounting", knowledge=True),
        SkillFact(uri="s3", label="negotiate contracts"),
    ]
    return FactSheet(
        occupation=OccupationFact(uri="o", label="office manager"),
        gap=skills,
        gap_total=12,
        course=CourseFact(id="c", title="Budgeting Basics", **course),  # type: ignore[arg-type]
        covered=skills[:2],
    )


@pytest.mark.parametrize("variant", range(6))
def test_logistics_wording(variant: int) -> None:
    free = template_explanation(_sheet(free=True, level="beginner", duration="3 hours"), variant=variant)
    assert re.search(r"is free|costs nothing", free) and "3 hours" in free
    paid = template_explanation(_sheet(price=49.99, currency="EUR", provider="Udemy"), variant=variant)
    assert "49.99 EUR" in paid
    unknown = template_explanation(_sheet(), variant=variant)
    assert not re.search(r"\d|free|costs|price", unknown), unknown
    assert not re.search(r"beginner|intermediate|advanced|all levels", unknown)
    assert "manage budgets" in unknown and "office manager" in unknown


def test_german_wording_and_long_titles() -> None:
    sheet = _sheet(free=True).model_copy(update={"language": "de"})
    german = template_explanation(sheet)
    assert re.search(r"Kurs|Kompetenzen|fehlt", german) and re.search(r"kostenlos|kostet nichts", german)
    long_title = "A " + "very " * 20 + "long course title"
    text = template_explanation(_long(long_title))
    assert long_title not in text and "this course" in text.lower()


def _long(title: str) -> FactSheet:
    sheet = _sheet()
    return sheet.model_copy(update={"course": sheet.course.model_copy(update={"title": title})})


def test_budget_holds_for_many_skills() -> None:
    skills = [SkillFact(uri=f"s{i}", label=f"operate machine type {i} safely") for i in range(8)]
    sheet = FactSheet(
        occupation=OccupationFact(uri="o", label="machine operator"),
        gap=skills,
        gap_total=8,
        course=CourseFact(id="c", title="Machines", provider="Some Provider", duration="12 hours", price=10),
        covered=skills,
    )
    text = template_explanation(sheet)
    assert approx_tokens(text) <= MAX_TOKENS
    assert "more of your gap skills" in text
