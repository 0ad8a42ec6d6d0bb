"""Udemy: the description export (source 'udemy') and the Kaggle title list without texts ('udemy_list')."""

from __future__ import annotations

from pathlib import Path

from knowledge.courses.adapters import normalize as norm
from knowledge.courses.adapters.readers import Collector, csv_records, make_course
from knowledge.courses.schema import Course
from knowledge.report import LoadReport

SOURCE = "udemy"
LIST_SOURCE = "udemy_list"
# Udemy courses are made by individual instructors the exports do not name; the platform is the provider
# so duplicates across catalogs (Coachable lists many Udemy courses) can be matched on title + provider.
PROVIDER = "Udemy"


def load(path: Path) -> tuple[list[Course], LoadReport]:
    """udemy_course_descriptions.csv: URL, Title, Headline, Description, Price ('€139.99', 'Free')."""
    report = LoadReport(source=SOURCE, file=str(path))
    collector = Collector(report)
    for line, row in csv_records(path, report):
        collector.add(line, lambda row=row: _described(row))
    return collector.result()


def load_list(path: Path) -> tuple[list[Course], LoadReport]:
    """udemy_courses.csv: titles and metadata only; rows are kept with has_description False."""
    report = LoadReport(source=LIST_SOURCE, file=str(path))
    collector = Collector(report)
    for line, row in csv_records(path, report):
        collector.add(line, lambda row=row: _listed(row))
    return collector.result()


def _described(row: dict[str, str]) -> Course:
    price, currency, free = norm.price(row.get("Price"))
    url = norm.clean(row.get("URL"))
    headline = norm.clean(row.get("Headline"))
    body = norm.clean(row.get("Description"))
    return make_course(
        SOURCE,
        url,
        norm.clean(row.get("Title")),
        url=url,
        description="\n\n".join(part for part in (headline, body) if part) or None,
        provider=PROVIDER,
        language=norm.language(row.get("Language")),
        price=price,
        currency=currency,
        free=free,
        format="online",
    )


def _listed(row: dict[str, str]) -> Course:
    paid = norm.boolean(row.get("is_paid"))
    price, _, free = norm.price(row.get("price"))
    if paid is False:
        price, free = 0.0, True
    duration = norm.hours(row.get("content_duration"))
    return make_course(
        LIST_SOURCE,
        norm.clean(row.get("course_id")),
        norm.clean(row.get("course_title")),
        url=norm.clean(row.get("url")),
        provider=PROVIDER,
        # The Kaggle set is an English listing; the currency of its prices is not documented, so none is set.
        language="en",
        level=norm.level(row.get("level")),
        duration_hours=duration,
        duration_text=f"{duration:g} hours" if duration is not None else None,
        price=price,
        free=free,
        format="online",
    )
