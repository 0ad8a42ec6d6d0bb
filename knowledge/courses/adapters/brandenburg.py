"""Weiterbildungsdatenbank Berlin-Brandenburg sample (wdb_brandenburg_courses_sample_de.csv), German."""

from __future__ import annotations

from pathlib import Path

from knowledge.courses.adapters import normalize as norm
from knowledge.courses.adapters.readers import Collector, csv_records, make_course
from knowledge.courses.schema import Course
from knowledge.report import LoadReport

SOURCE = "brandenburg"


def load(path: Path) -> tuple[list[Course], LoadReport]:
    report = LoadReport(source=SOURCE, file=str(path))
    collector = Collector(report)
    for line, row in csv_records(path, report):
        collector.add(line, lambda row=row: _course(row))
    return collector.result()


def _course(row: dict[str, str]) -> Course:
    # The export carries no provider, format, price or dates; they stay unknown rather than guessed.
    return make_course(
        SOURCE,
        norm.clean(row.get("course_id")),
        norm.clean(row.get("course_name")),
        description=norm.clean(row.get("course_description")),
        language="de",
    )
