"""edX courses (edx_courses.csv): English and Spanish, online, audit-free with a paid certificate."""

from __future__ import annotations

from pathlib import Path

from knowledge.courses.adapters import normalize as norm
from knowledge.courses.adapters.readers import Collector, csv_records, make_course
from knowledge.courses.schema import Course
from knowledge.report import LoadReport

SOURCE = "edx"


def load(path: Path) -> tuple[list[Course], LoadReport]:
    report = LoadReport(source=SOURCE, file=str(path))
    collector = Collector(report)
    for line, row in csv_records(path, report):
        collector.add(line, lambda row=row: _course(row))
    return collector.result()


def _course(row: dict[str, str]) -> Course:
    length = norm.clean(row.get("course_length"))
    effort = norm.clean(row.get("course_effort"))
    # 'FREE-Add a Verified Certificate for $49 USD': auditing is free; the certificate price is not the
    # course price, so it is dropped rather than reported as the cost.
    price, currency, free = norm.price(row.get("price"))
    url = norm.clean(row.get("course_url"))
    return make_course(
        SOURCE,
        url,
        norm.clean(row.get("title")),
        url=url,
        description=_join(row.get("summary"), row.get("course_description")),
        provider=norm.clean(row.get("institution")),
        language=norm.language(row.get("language")),
        level=norm.level(row.get("Level")),
        duration_hours=norm.weekly_hours(length, effort),
        duration_text=", ".join(part for part in (length, effort) if part) or None,
        price=price,
        currency=currency,
        free=free,
        format="online",
    )


def _join(*parts: str | None) -> str | None:
    """Summary (one-line pitch) then description, skipping blanks."""
    return "\n\n".join(text for part in parts if (text := norm.clean(part))) or None
