from __future__ import annotations

from datetime import date

import pytest

from knowledge.courses.adapters import normalize as norm


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Beginner", "beginner"),
        ("Introductory", "beginner"),
        ("Beginner Level", "beginner"),
        ("Intermediate", "intermediate"),
        ("Advanced", "advanced"),
        ("Expert Level", "advanced"),
        ("Mixed", "mixed"),
        ("All Levels", "mixed"),
        ("Unknown", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_level(raw: str | None, expected: str) -> None:
    assert norm.level(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("English", "en"),
        ("en_US", "en"),
        ("de-DE", "de"),
        ("Spanish", "es"),
        ("Español", "es"),
        ("中文", "zh"),
        ("de", "de"),
        ("Klingon", None),
        ("", None),
    ],
)
def test_language(raw: str, expected: str | None) -> None:
    assert norm.language(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("€139.99", (139.99, "EUR", False)),
        ("Free", (0.0, None, True)),
        ("FREE-Add a Verified Certificate for $49 USD", (0.0, None, True)),
        ("49 USD", (49.0, "USD", False)),
        ("€ 1.234,50", (1234.5, "EUR", False)),
        ("$1,299", (1299.0, "USD", False)),
        ("Free Trial", (None, None, False)),
        ("Paid", (None, None, False)),
        (0, (0.0, None, True)),
        (25.5, (25.5, None, False)),
        ("", (None, None, None)),
        (None, (None, None, None)),
    ],
)
def test_price(raw: object, expected: tuple[float | None, str | None, bool | None]) -> None:
    assert norm.price(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1.5, 1.5),
        ("39.0", 39.0),
        ("Less Than 2 Hours", 2.0),
        ("90 min", 1.5),
        ("3 - 6 Months", None),
        (0, None),
        ("0", None),
    ],
)
def test_hours(raw: object, expected: float | None) -> None:
    assert norm.hours(raw) == expected


def test_weekly_hours_uses_the_midpoint_of_the_effort_range() -> None:
    assert norm.weekly_hours("6 Weeks", "2–4 hours per week") == 18.0
    assert norm.weekly_hours("1 Weeks", "3 hours per week") == 3.0
    assert norm.weekly_hours("Self-paced", "2–4 hours per week") is None


def test_python_list_dedups_and_flags_malformed_literals() -> None:
    assert norm.python_list("['SQL', 'Excel', 'SQL']") == ["SQL", "Excel"]
    assert norm.python_list("[]") == []
    assert norm.python_list("['SQL', 'Excel'") is None
    assert norm.python_list("__import__('os')") is None


def test_html_to_text_keeps_block_structure_and_entities() -> None:
    html = "<h4> Kurs </h4><p>C++ &amp; Qt<br/>Scrum</p><ul><li>KI</li></ul>"
    assert norm.html_to_text(html) == "Kurs\nC++ & Qt\nScrum\n- KI"
    assert norm.html_to_text("<p> </p>") is None


def test_german_dates_skips_impossible_dates() -> None:
    assert norm.german_dates("Starttermine: 17.07.2023, 19.06.2023, 31.02.2023") == [
        date(2023, 6, 19),
        date(2023, 7, 17),
    ]
