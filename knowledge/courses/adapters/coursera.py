"""Coursera course pages (coursera_courses_2023.csv): English, online, skills as a Python-list string."""

from __future__ import annotations

from pathlib import Path

from knowledge.courses.adapters import normalize as norm
from knowledge.courses.adapters.readers import Collector, csv_records, make_course
from knowledge.courses.schema import Course
from knowledge.report import LoadReport

SOURCE = "coursera"


def load(path: Path) -> tuple[list[Course], LoadReport]:
    report = LoadReport(source=SOURCE, file=str(path))
    collector = Collector(report)
    for line, row in csv_records(path, report):
        collector.add(line, lambda line=line, row=row: _course(line, row, report))
    return collector.result()


def _course(line: int, row: dict[str, str], report: LoadReport) -> Course:
    skills = norm.python_list(row.get("course_skills"))
    if skills is None:
        # The course is still useful without its skills; keep it and leave a trace.
        report.notes.append(f"line {line}: course_skills is not a list literal, skills dropped")
        skills = []
    duration_text = norm.clean(row.get("course_time"))
    url = norm.clean(row.get("course_url"))
    return make_course(
        SOURCE,
        url,
        norm.clean(row.get("course_title")),
        url=url,
        description=norm.clean(row.get("course_description")) or _summary(row.get("course_summary")),
        provider=norm.clean(row.get("course_organization")),
        language="en",
        level=norm.level(row.get("course_difficulty")),
        duration_hours=norm.hours(duration_text),
        duration_text=duration_text,
        format="online",
        raw_skills=skills,
    )


def _summary(value: str | None) -> str | None:
    """The bullet-point summary stands in for a missing description."""
    items = norm.python_list(value)
    return norm.clean("\n".join(items)) if items else None
