"""Coachable course catalog (course_catalog_esco.json): aggregated listings, some with ESCO skills attached.

The ESCO links were assigned automatically by the originating project (weak labels); they are passed on as
``esco_skills`` and the names as ``raw_skills`` so downstream code can decide how far to trust them.
"""

from __future__ import annotations

from pathlib import Path

from knowledge.courses.adapters import normalize as norm
from knowledge.courses.adapters.readers import Collector, Reject, array_lines, make_course, read_json
from knowledge.courses.schema import Course
from knowledge.report import LoadReport

SOURCE = "coachable"


def load(path: Path) -> tuple[list[Course], LoadReport]:
    report = LoadReport(source=SOURCE, file=str(path))
    collector = Collector(report)
    document, text = read_json(path, report)
    if document is None:
        return collector.result()
    records = document.get("courses") if isinstance(document, dict) else None
    if not isinstance(records, list):
        report.notes.append("no 'courses' array at the top level")
        return collector.result()
    lines = array_lines(text, "courses", records)
    for line, record in zip(lines, records, strict=True):
        report.rows += 1
        collector.add(line, lambda record=record: _course(record))
    return collector.result()


def _course(record: object) -> Course:
    if not isinstance(record, dict):
        raise Reject(f"bad json record: expected an object, got {type(record).__name__}")
    url = norm.clean(record.get("url"))
    hours = norm.hours(record.get("duration_hours"))  # 0 is the catalog's "not known"
    price, currency, free = _price(record.get("price"))
    skills = [item for item in record.get("skills") or [] if isinstance(item, dict)]
    listed = record.get("esco_skills") or []
    extra_uris = [item.get("uri") if isinstance(item, dict) else item for item in listed]
    return make_course(
        SOURCE,
        norm.clean(record.get("id")) or url,
        norm.clean(record.get("title")),
        url=url,
        description=norm.clean(record.get("description")),
        provider=norm.clean(record.get("provider")),
        language=norm.language(record.get("language")),
        level=norm.level(record.get("level")),
        duration_hours=hours,
        duration_text=f"{hours:g} hours" if hours is not None else None,
        price=price,
        currency=currency,
        free=free,
        format=norm.course_format(record.get("format")),
        raw_skills=norm.unique(item.get("name") for item in skills),
        esco_skills=norm.unique([*(item.get("esco_uri") for item in skills), *extra_uris]),
    )


def _price(value: object) -> tuple[float | None, str | None, bool | None]:
    """'Free' is free; a numeric 0.0 (every Coursera/MIT row) is the scraper's default: unknown."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return None, None, None
    return norm.price(value)
