"""The faithfulness check catches invented skills (EN and DE labels), invented catalog courses, invented
quoted titles and numbers, and the form failures; faithful texts pass."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from craft.settings import Settings
from knowledge.store import KnowledgeBase
from tools.explain.facts import FactSheet
from tools.explain.templates import template_explanation
from tools.explain.validate import FaithfulnessChecker, faithful, norm_words

pytestmark = [pytest.mark.data]


@pytest.fixture(scope="module")
def sheet(real_sheets: list[FactSheet]) -> FactSheet:
    return next(s for s in real_sheets if s.language == "en" and len(s.covered) >= 1 and len(s.gap) >= 3)


def test_a_faithful_text_passes(sheet: FactSheet, checker: FaithfulnessChecker) -> None:
    skill = sheet.covered[0].label
    text = f'"{sheet.course.title}" teaches {skill}, which you need as a {sheet.occupation.label}.'
    verdict = checker.check(text, sheet)
    assert verdict.ok and verdict.faithful and not verdict.reasons, verdict.reasons
    assert 0 < verdict.tokens <= 60


def test_an_invented_skill_is_caught(
    sheet: FactSheet, checker: FaithfulnessChecker, foreign_skill: Callable[[FactSheet, str], str]
) -> None:
    for lang in ("en", "de"):
        invented = foreign_skill(sheet, lang)
        text = template_explanation(sheet) + f" It also covers {invented}."
        verdict = checker.check(text, sheet)
        assert not verdict.faithful and not verdict.ok
        assert [m.kind for m in verdict.unsupported] == ["skill"], verdict.reasons
        assert norm_words(verdict.unsupported[0].text) == norm_words(invented)
        assert "names skill" in verdict.reasons[0]


def test_an_invented_course_is_caught(
    kb: KnowledgeBase, sheet: FactSheet, checker: FaithfulnessChecker
) -> None:
    titles = [t for t in kb.courses.title if len(norm_words(t).split()) >= 4 and t != sheet.course.title]
    other = next(
        t
        for t in titles
        if not checker.skill_mentions(t) and not any(ch.isdigit() or ch in '"“„' for ch in t)
    )
    verdict = checker.check(f"Take {other} first, then this course.", sheet)
    assert [m.kind for m in verdict.unsupported] == ["course"], verdict.reasons
    assert "names course" in verdict.reasons[0]

    quoted = checker.check('Try "Advanced Widget Polishing Masterclass" for this.', sheet)
    assert [m.kind for m in quoted.unsupported] == ["quote"]
    assert checker.check(f'Try "{sheet.course.title}".', sheet).faithful


def test_invented_numbers_are_caught(sheet: FactSheet, checker: FaithfulnessChecker) -> None:
    allowed = sheet.allowed_numbers()
    number = next(str(n) for n in range(1234, 99999) if str(n) not in allowed)
    verdict = checker.check(f"This course costs {number} EUR.", sheet)
    assert [m.kind for m in verdict.unsupported] == ["number"] and number in verdict.reasons[0]


def test_form_checks(sheet: FactSheet, checker: FaithfulnessChecker) -> None:
    empty = checker.check("  ", sheet)
    assert not empty.ok and empty.faithful and empty.reasons == ["empty output"]
    cut = checker.check("This course covers the basics and then", sheet)
    assert not cut.ok and cut.faithful and "cut off" in cut.reason  # type: ignore[operator]
    long = checker.check("This course is good. " * 20, sheet)
    assert not long.ok and long.faithful and "too long" in long.reason  # type: ignore[operator]


def test_default_checker_from_settings(enriched_settings: Settings, sheet: FactSheet) -> None:
    assert faithful(template_explanation(sheet), sheet, settings=enriched_settings).faithful
