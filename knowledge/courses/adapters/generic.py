"""Catalogs users bring: a CSV/TSV or JSON Lines file plus a mapping from Course fields to its columns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from knowledge.courses.adapters import normalize as norm
from knowledge.courses.adapters.readers import Collector, csv_records, jsonl_records, make_course
from knowledge.courses.schema import Course, Format
from knowledge.report import LoadReport

SOURCE = "generic"
_JSONL = {".jsonl", ".ndjson"}
_MAPPED_FIELDS = (
    *("title", "source_id", "url", "description", "provider", "language", "level", "duration_hours"),
    *("duration_text", "price", "currency", "free", "format", "location", "start_dates"),
    *("raw_skills", "esco_skills"),
)


class ColumnMapping(BaseModel):
    """Which column holds which Course field; unmapped fields stay unknown or take the defaults."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(SOURCE, description="Source name written into every Course and its id.")
    default_language: str | None = Field(None, description="Language for rows without one, e.g. 'de'.")
    default_format: Format = "unknown"
    list_separator: str = Field(";", description="Splits list fields (skills, dates) in CSV cells.")
    delimiter: str = Field(",", description="CSV field delimiter; '.tsv' files always use a tab.")

    title: str = "title"
    source_id: str | None = Field(None, description="Id column; rows without one use url, then title.")
    url: str | None = None
    description: str | None = None
    description_is_html: bool = False
    provider: str | None = None
    language: str | None = None
    level: str | None = None
    duration_hours: str | None = None
    duration_text: str | None = None
    price: str | None = None
    currency: str | None = None
    free: str | None = None
    format: str | None = None
    location: str | None = None
    start_dates: str | None = None
    raw_skills: str | None = None
    esco_skills: str | None = None

    def columns(self) -> set[str]:
        """The source columns this mapping reads, to warn about ones the file lacks."""
        return {column for name in _MAPPED_FIELDS if (column := getattr(self, name))}


def load(path: Path, mapping: ColumnMapping | None = None) -> tuple[list[Course], LoadReport]:
    """Reads '.jsonl'/'.ndjson' as JSON Lines, anything else as delimited text with a header row."""
    mapping = mapping or ColumnMapping()
    report = LoadReport(source=mapping.source, file=str(path))
    collector = Collector(report)
    checked = path.suffix.lower() in _JSONL  # JSON Lines have no header to check
    for line, row in _records(path, mapping, report):
        if not checked:
            missing = sorted(mapping.columns() - set(row))
            if missing:
                report.notes.append(f"mapped columns not in the header: {', '.join(missing)}")
            checked = True
        collector.add(line, lambda line=line, row=row: _course(line, row, mapping, report))
    return collector.result()


Record = tuple[int, dict[str, object]]


def _records(path: Path, mapping: ColumnMapping, report: LoadReport) -> Iterator[Record]:
    if path.suffix.lower() in _JSONL:
        yield from jsonl_records(path, report)
    else:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else mapping.delimiter
        yield from csv_records(path, report, delimiter=delimiter)


def _course(line: int, row: dict[str, object], m: ColumnMapping, report: LoadReport) -> Course:
    def get(column: str | None) -> object:
        return row.get(column) if column else None

    url = norm.clean(get(m.url))
    description = get(m.description)
    price, currency, free = norm.price(get(m.price))
    stated_free = norm.boolean(get(m.free))
    if stated_free is True:
        price, currency, free = 0.0, None, True
    elif stated_free is False and free is None:
        free = False
    fmt = norm.course_format(get(m.format))
    hours = norm.hours(get(m.duration_hours))
    dates, unreadable = _dates(get(m.start_dates), m.list_separator)
    if unreadable:
        report.notes.append(f"line {line}: start dates not understood, dropped: {', '.join(unreadable)}")
    return make_course(
        m.source,
        norm.clean(get(m.source_id)) or url,
        norm.clean(get(m.title)),
        url=url,
        description=norm.html_to_text(description) if m.description_is_html else norm.clean(description),
        provider=norm.clean(get(m.provider)),
        language=norm.language(get(m.language)) or m.default_language,
        level=norm.level(get(m.level)),
        duration_hours=hours,
        duration_text=norm.clean(get(m.duration_text)) or _hours_text(get(m.duration_hours), hours),
        price=price,
        currency=(norm.clean(get(m.currency)) or currency) if price else None,
        free=free,
        format=fmt if fmt != "unknown" else m.default_format,
        location=norm.clean(get(m.location)),
        start_dates=dates,
        raw_skills=_items(get(m.raw_skills), m.list_separator),
        esco_skills=_items(get(m.esco_skills), m.list_separator),
    )


def _hours_text(cell: object, hours: float | None) -> str | None:
    """A bare number from an hours column reads '40 hours'; a cell with its own unit is kept as written."""
    text = norm.clean(cell)
    bare = text is not None and text.replace(".", "", 1).isdigit()
    return f"{hours:g} hours" if bare and hours is not None else text


def _items(value: object, separator: str) -> list[str]:
    """JSON Lines give lists; CSV cells are split on the separator."""
    if isinstance(value, list):
        return norm.unique(value)
    text = norm.clean(value)
    return norm.unique(text.split(separator)) if text else []


def _dates(value: object, separator: str) -> tuple[list[date], list[str]]:
    """(ISO or dd.mm.yyyy dates, items that are neither); a bad date costs the date, not the course."""
    dates: set[date] = set()
    unreadable: list[str] = []
    for item in _items(value, separator):
        try:
            dates.add(date.fromisoformat(item[:10]))
        except ValueError:
            found = norm.german_dates(item)
            dates.update(found)
            if not found:
                unreadable.append(item)
    return sorted(dates), unreadable
