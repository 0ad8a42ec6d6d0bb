from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from knowledge.courses.adapters import generic
from knowledge.courses.adapters.generic import ColumnMapping
from knowledge.courses.schema import course_id

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "courses" / "generic"

CSV_MAPPING = ColumnMapping(
    source="mycsv",
    default_language="de",
    delimiter=";",
    list_separator=",",
    source_id="Kurs-ID",
    title="Name",
    url="Link",
    description="Beschreibung",
    description_is_html=True,
    provider="Anbieter",
    language="Sprache",
    level="Niveau",
    duration_hours="Stunden",
    price="Preis",
    format="Modus",
    location="Ort",
    start_dates="Termine",
    raw_skills="Themen",
)


def test_generic_csv_with_mapping() -> None:
    courses, report = generic.load(FIXTURES / "my_catalog.csv", CSV_MAPPING)

    assert (report.source, report.rows, report.kept) == ("mycsv", 3, 2)
    assert [(item.line, item.reason) for item in report.rejected] == [
        (4, "wrong column count: expected 13, got 2")
    ]
    assert report.notes == ["line 3: start dates not understood, dropped: bald"]

    python, excel = courses
    assert python.id == course_id("mycsv", "K-1")
    assert python.description == "Erste Schritte\nmit Python"
    assert (python.language, python.level, python.format) == ("de", "beginner", "in-person")
    assert (python.duration_hours, python.duration_text) == (40.0, "40 hours")
    assert (python.price, python.currency, python.free) == (99.5, "EUR", False)
    assert python.location == "Berlin"
    assert python.start_dates == [date(2024, 1, 15), date(2024, 3, 1)]
    assert python.raw_skills == ["Python", "Programmierung"]

    assert excel.url is None
    assert excel.language == "de"  # default for a row without one
    assert (excel.duration_hours, excel.duration_text) == (1.5, "1,5 Stunden")
    assert (excel.price, excel.free) == (0.0, True)
    assert excel.start_dates == [date(2024, 2, 1)]


def test_generic_jsonl_with_mapping() -> None:
    mapping = ColumnMapping(
        source="mylist",
        source_id="id",
        title="name",
        description="text",
        raw_skills="tags",
        price="cost",
        language="lang",
    )

    courses, report = generic.load(FIXTURES / "my_catalog.jsonl", mapping)

    assert (report.rows, report.kept) == (4, 1)
    assert [(item.line, item.reason.split(":")[0]) for item in report.rejected] == [
        (2, "bad json"),
        (3, "no title"),
        (5, "bad json"),
    ]
    (welding,) = courses
    assert welding.raw_skills == ["welding", "safety"]
    assert (welding.language, welding.price, welding.free) == ("en", 0.0, True)


def test_generic_notes_mapped_columns_missing_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("title,link\nIntro to SQL,https://example.org/sql\n", encoding="utf-8")

    courses, report = generic.load(path, ColumnMapping(url="url", provider="provider"))

    assert [course.title for course in courses] == ["Intro to SQL"]
    assert courses[0].source == "generic"
    assert courses[0].source_id == "title:intro to sql"
    assert report.notes == ["mapped columns not in the header: provider, url"]


def test_mapping_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        ColumnMapping(titel="Name")  # type: ignore[call-arg]
