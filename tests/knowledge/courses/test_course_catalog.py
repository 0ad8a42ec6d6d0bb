from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from knowledge.courses.adapters.generic import ColumnMapping
from knowledge.courses.catalog import BUILTIN_SOURCES, load_catalog, merge_duplicates, normalize_url
from knowledge.courses.schema import Course, course_id

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "courses"


def course(source: str, source_id: str, title: str, **fields: object) -> Course:
    return Course(id=course_id(source, source_id), source=source, source_id=source_id, title=title, **fields)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.Coursera.org/learn/ml/?utm_source=x#about", "coursera.org/learn/ml"),
        ("http://coursera.org/learn/ml", "coursera.org/learn/ml"),
        (
            "https://click.linksynergy.com/deeplink?id=X&murl=https%3A%2F%2Fwww.udemy.com%2Fcourse%2Fgit%2F",
            "udemy.com/git",
        ),
        (
            "https://edx.sjv.io/c/1/2/3?u=https%3A%2F%2Fwww.edx.org%2Fcourse%2Fcs50&subId1=x",
            "edx.org/course/cs50",
        ),
        ("https://www.udemy.com/course/git/", "udemy.com/git"),
        ("www.edx.org/course/cs50/", "edx.org/course/cs50"),
        ("https://www.bildung.alfatraining.com", None),  # a home page identifies no course
        ("", None),
        (None, None),
    ],
)
def test_normalize_url(url: str | None, expected: str | None) -> None:
    assert normalize_url(url) == expected


def test_load_catalog_merges_duplicates_across_sources() -> None:
    courses, reports = load_catalog(FIXTURES)

    assert [report.source for report in reports] == list(BUILTIN_SOURCES)
    kept = sum(report.kept for report in reports)
    assert kept == 16
    assert len(courses) == 13  # three duplicate pairs merged
    assert [c.id for c in courses] == sorted(c.id for c in courses)
    by_title = {c.title: c for c in courses}

    # Same normalized title + same provider across coursera and edx: coursera wins, edx fills gaps.
    data = by_title["Data Science Fundamentals"]
    assert data.source == "coursera"
    assert data.also_in == [course_id("edx", "https://www.edx.org/course/data-science-fundamentals")]
    assert data.description == "Foundations of data science."
    assert (data.price, data.free) == (0.0, True)
    assert (data.duration_hours, data.duration_text) == (None, "1 - 4 Weeks")  # coursera's own, not mixed

    # Same URL after unwrapping the affiliate deeplink: udemy wins, Coachable's ESCO skills are kept.
    git = by_title["Git Basics"]
    assert git.source == "udemy"
    assert git.esco_skills == ["http://data.europa.eu/esco/skill/git"]
    assert git.raw_skills == ["use Git"]
    assert len(git.also_in) == 1 and git.also_in[0].startswith("coachable:")

    # udemy '/course/<slug>/' and udemy_list '/<slug>/' are one page; the list row fills level and duration.
    bootcamp = by_title["Complete Python Bootcamp"]
    assert bootcamp.source == "udemy"
    assert bootcamp.also_in == [course_id("udemy_list", "1001")]
    assert (bootcamp.price, bootcamp.currency) == (139.99, "EUR")
    assert (bootcamp.level, bootcamp.duration_hours) == ("mixed", 1.5)

    assert {c.source for c in courses if not c.also_in} >= {"arbeitsagentur", "brandenburg", "coachable"}


def test_load_catalog_with_a_generic_source_merges_by_url() -> None:
    mapping = ColumnMapping(
        source="mycsv",
        delimiter=";",
        list_separator=",",
        source_id="Kurs-ID",
        title="Name",
        url="Link",
        provider="Anbieter",
        location="Ort",
        start_dates="Termine",
    )

    courses, reports = load_catalog(FIXTURES, extra=[(FIXTURES / "generic" / "my_catalog.csv", mapping)])

    assert reports[-1].source == "mycsv"
    python = next(c for c in courses if c.title == "Python for Everybody")
    assert python.also_in == [course_id("mycsv", "K-1")]
    assert python.location == "Berlin"
    assert python.start_dates == [date(2024, 1, 15), date(2024, 3, 1)]
    assert any(c.title == "Excel kompakt" for c in courses)


def test_missing_files_are_notes_not_errors(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "edx_courses.csv", tmp_path / "edx_courses.csv")

    courses, reports = load_catalog(tmp_path, extra=[(tmp_path / "nope.csv", ColumnMapping())])

    assert {c.source for c in courses} == {"edx"}
    missing = [report.source for report in reports if report.notes == ["file not found"]]
    assert missing == [name for name in BUILTIN_SOURCES if name != "edx"] + ["generic"]


def test_same_title_different_provider_is_not_merged() -> None:
    a = course("coursera", "a", "Machine Learning", provider="Stanford University")
    b = course("edx", "b", "Machine Learning", provider="Columbia University")

    assert len(merge_duplicates([a, b])) == 2


def test_marketplace_provider_titles_are_not_enough() -> None:
    a = course(
        "udemy", "a", "JavaScript for Beginners", provider="Udemy", url="https://www.udemy.com/course/js-a/"
    )
    b = course(
        "udemy_list", "b", "JavaScript for Beginners", provider="Udemy", url="https://www.udemy.com/js-b/"
    )

    assert len(merge_duplicates([a, b])) == 2


def test_records_of_one_source_are_never_merged() -> None:
    first = course("arbeitsagentur", "1", "SAP Grundlagen", provider="X", location="Kiel")
    second = course("arbeitsagentur", "2", "SAP Grundlagen", provider="X", location="Ulm")

    assert len(merge_duplicates([first, second])) == 2


def test_merge_is_order_independent_and_prefers_priority() -> None:
    coachable = course(
        "coachable",
        "c",
        "Intro to SQL",
        provider="Acme",
        description="Short.",
        raw_skills=["SQL"],
        level="beginner",
    )
    edx = course("edx", "e", "Intro  to SQL!", provider="ACME", raw_skills=["Databases", "SQL"])
    generic = course("generic", "g", "Intro to SQL", provider="acme", location="Berlin")

    forward = merge_duplicates([coachable, edx, generic])
    backward = merge_duplicates([generic, edx, coachable])

    assert forward == backward
    (merged,) = forward
    assert merged.source == "edx"
    assert merged.description == "Short." and merged.has_description
    assert merged.raw_skills == ["Databases", "SQL"]
    assert (merged.level, merged.location) == ("beginner", "Berlin")
    assert merged.also_in == sorted([coachable.id, generic.id])
