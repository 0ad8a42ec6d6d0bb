"""Each built-in adapter on its small hand-written fixture under tests/fixtures/courses/."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from knowledge.courses.adapters import arbeitsagentur, brandenburg, coachable, coursera, edx, udemy
from knowledge.courses.schema import course_id
from knowledge.report import LoadReport

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "courses"


def rejects(report: LoadReport) -> list[tuple[int, str]]:
    return [(item.line, item.reason) for item in report.rejected]


def test_coursera_parses_multiline_rows_and_reports_bad_ones() -> None:
    courses, report = coursera.load(FIXTURES / "coursera_courses_2023.csv")

    assert (report.rows, report.kept, report.rejected_count) == (5, 3, 2)
    assert rejects(report) == [(5, "wrong column count: expected 13, got 3"), (6, "no title")]
    assert all(item.file.endswith("coursera_courses_2023.csv") for item in report.rejected)
    assert report.notes == ["line 4: course_skills is not a list literal, skills dropped"]

    python, agile, data = courses
    assert python.id == course_id("coursera", "https://www.coursera.org/specializations/python")
    assert python.source_id == python.url == "https://www.coursera.org/specializations/python"
    assert python.title == "Python for Everybody"
    assert python.description == 'Learn to program\nand analyze data with Python, "from scratch".'
    assert python.provider == "University of Michigan"
    assert (python.language, python.level, python.format) == ("en", "beginner", "online")
    assert (python.duration_hours, python.duration_text) == (None, "1 - 3 Months")
    assert (python.price, python.currency, python.free) == (None, None, None)
    assert python.raw_skills == ["Python Programming", "Data Structures"]
    assert python.has_description

    # Malformed skills keep the course; the summary stands in for the empty description.
    assert agile.raw_skills == []
    assert agile.description == "Plan sprints.\nRun retrospectives."
    assert (agile.level, agile.duration_hours, agile.duration_text) == ("mixed", 2.0, "Less Than 2 Hours")
    assert data.title == "Data Science Fundamentals"


def test_edx_free_audit_weekly_effort_and_in_file_duplicates() -> None:
    courses, report = edx.load(FIXTURES / "edx_courses.csv")

    assert (report.rows, report.kept) == (3, 2)
    assert rejects(report) == [(5, "duplicate: same source id as line 2")]
    assert report.reasons == {"duplicate": 1}

    data, spanish = courses
    assert data.description == "Start your data career.\n\nLearn the basics of data science."
    assert (data.provider, data.level, data.language) == ("IBM", "beginner", "en")
    assert (data.duration_hours, data.duration_text) == (18.0, "6 Weeks, 2–4 hours per week")
    # The verified-certificate price is not the course price.
    assert (data.price, data.currency, data.free) == (0.0, None, True)
    assert spanish.language == "es"
    assert spanish.level == "intermediate"
    assert spanish.description == "Aprende a programar.\n\nPrimera línea.\nSegunda línea."


def test_udemy_descriptions_prices_and_headline() -> None:
    courses, report = udemy.load(FIXTURES / "udemy_course_descriptions.csv")

    assert (report.source, report.rows, report.kept, report.rejected_count) == ("udemy", 2, 2, 0)
    bootcamp, git = courses
    assert bootcamp.source_id == "https://www.udemy.com/course/python-bootcamp/"
    assert (
        bootcamp.description == "Learn Python like a pro.\n\nWelcome to the bootcamp.\n\nBuild 10 projects."
    )
    assert (bootcamp.price, bootcamp.currency, bootcamp.free) == (139.99, "EUR", False)
    assert (bootcamp.language, bootcamp.provider, bootcamp.format) == ("en", "Udemy", "online")
    assert (git.price, git.currency, git.free) == (0.0, None, True)


def test_udemy_list_keeps_rows_without_description() -> None:
    courses, report = udemy.load_list(FIXTURES / "udemy_courses.csv")

    assert (report.source, report.rows, report.kept) == ("udemy_list", 3, 2)
    assert rejects(report) == [(4, "no title")]
    bootcamp, guitar = courses
    assert bootcamp.id == course_id("udemy_list", "1001")
    assert bootcamp.description is None and not bootcamp.has_description
    assert (bootcamp.level, bootcamp.duration_hours, bootcamp.duration_text) == ("mixed", 1.5, "1.5 hours")
    assert (bootcamp.price, bootcamp.currency, bootcamp.free) == (200.0, None, False)
    assert (guitar.level, guitar.price, guitar.free) == ("beginner", 0.0, True)


def test_coachable_skills_ids_and_json_rejects_with_lines() -> None:
    courses, report = coachable.load(FIXTURES / "course_catalog_esco.json")

    assert (report.rows, report.kept) == (5, 3)
    assert rejects(report) == [(21, "bad json record: expected an object, got str"), (50, "no title")]

    git, ml, nursing = courses
    assert git.raw_skills == ["use Git"]
    assert git.esco_skills == ["http://data.europa.eu/esco/skill/git"]
    assert git.source_id == git.url  # no id in the record: the URL identifies it
    assert (git.format, git.free, git.duration_hours, git.duration_text) == ("online", True, None, None)
    assert ml.source_id == "c-1"
    assert (ml.level, ml.duration_hours, ml.duration_text) == ("beginner", 6.0, "6 hours")
    # A numeric 0.0 price is the scraper's default, not "free".
    assert (ml.price, ml.free) == (None, None)
    # Neither id nor URL ('null'): the normalized title identifies the record.
    assert nursing.source_id == "title:crisis nursing"
    assert nursing.url is None
    assert (nursing.price, nursing.free) == (None, False)  # 'Free Trial'


def test_arbeitsagentur_file() -> None:
    courses, report = arbeitsagentur.load(FIXTURES / "arbeitsagentur_weiterbildungssuche_sample_2023.json")

    assert (report.rows, report.kept) == (3, 2)
    assert rejects(report) == [(46, "bad json record: no angebot")]

    welding, bookkeeping = courses
    assert welding.id == course_id("arbeitsagentur", "1001")
    assert welding.title == "Schweißen Grundkurs"
    assert welding.description == "Grundlagen & Praxis\nMAG-Schweißen\nWIG-Schweißen\n- Arbeitssicherheit"
    assert welding.provider == "Bildungswerk Nord GmbH"
    assert welding.url == "https://bildungswerk-nord.example/kurse/schweissen"
    assert (welding.language, welding.format, welding.location) == ("de", "in-person", "Kiel")
    assert (welding.price, welding.currency, welding.free) == (1250.0, "EUR", False)
    assert welding.duration_text == "bis 3 Tage"
    assert welding.start_dates == [date(2023, 7, 17)]  # epoch ms of midnight in Berlin, not UTC
    assert welding.raw_skills == ["Schweißen", "MAG"]  # the keyword equal to the title is dropped

    assert bookkeeping.format == "online"
    assert (bookkeeping.price, bookkeeping.currency, bookkeeping.free) == (None, None, None)  # kostenWert 0.0
    assert bookkeeping.start_dates == [date(2023, 6, 19), date(2023, 7, 17)]
    assert bookkeeping.description is None and not bookkeeping.has_description
    assert bookkeeping.location is None


def test_arbeitsagentur_live_payload_without_lines() -> None:
    payload = {
        "_embedded": {
            "termine": [
                {
                    "id": 7,
                    "unterrichtsform": {"bezeichnung": "Blended Learning"},
                    "angebot": {"titel": "SAP Grundlagen", "bildungsanbieter": {"name": "X"}},
                },
                {"id": 8, "unterrichtsform": {"id": 401}, "angebot": {"titel": " "}},
            ]
        }
    }
    report = LoadReport(source="arbeitsagentur", file="live")

    courses = arbeitsagentur.courses_from_response(payload, report)

    assert [(course.title, course.format) for course in courses] == [("SAP Grundlagen", "blended")]
    assert (report.rows, report.kept) == (2, 1)
    assert rejects(report) == [(0, "no title")]


def test_brandenburg_crlf_file() -> None:
    courses, report = brandenburg.load(FIXTURES / "wdb_brandenburg_courses_sample_de.csv")

    assert (report.rows, report.kept, report.rejected_count) == (2, 2, 0)
    cloud = courses[0]
    assert cloud.source_id == "A1DFC244-E07B-BE74-4422-1995EE3B5F8A"
    assert (
        cloud.description == '"Cloud Computing" ist die Bereitstellung von IT-Ressourcen.\n\n- AWS\n- Azure'
    )
    assert (cloud.language, cloud.provider, cloud.format) == ("de", None, "unknown")
