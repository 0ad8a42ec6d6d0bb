"""All course catalogs in one list: load every built-in source that is present, then merge duplicates.

Duplicates are merged across sources only. Within one source two records with the same title and
provider are kept apart: they are different runs, formats or locations (Arbeitsagentur termine) or
different instructors' courses on a marketplace, and the source's own id already tells them apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from knowledge.courses.adapters import arbeitsagentur, brandenburg, coachable, coursera, edx, generic, udemy
from knowledge.courses.adapters.generic import ColumnMapping
from knowledge.courses.schema import Course, normalize_title
from knowledge.report import LoadReport

log = logging.getLogger(__name__)

Loader = Callable[[Path], tuple[list[Course], LoadReport]]


@dataclass(frozen=True)
class Source:
    name: str
    filename: str
    load: Loader


# Order is merge priority: the first source of a duplicate group keeps its record; richer catalogs first.
BUILTIN_SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source("coursera", "coursera_courses_2023.csv", coursera.load),
        Source("edx", "edx_courses.csv", edx.load),
        Source("udemy", "udemy_course_descriptions.csv", udemy.load),
        Source("coachable", "course_catalog_esco.json", coachable.load),
        Source("arbeitsagentur", "arbeitsagentur_weiterbildungssuche_sample_2023.json", arbeitsagentur.load),
        Source("brandenburg", "wdb_brandenburg_courses_sample_de.csv", brandenburg.load),
        Source("udemy_list", "udemy_courses.csv", udemy.load_list),
    )
}
PRIORITY: tuple[str, ...] = (*BUILTIN_SOURCES, generic.SOURCE)

# Marketplaces listed as "provider": a shared title there says nothing, many instructors reuse titles.
_MARKETPLACES = frozenset({"udemy", "youtube", "skillshare", "others", "other"})
# Affiliate redirectors put the real course URL in a query parameter; these parameters are unwrapped.
_WRAPPED_URL_PARAMS = ("murl", "url", "u", "redirect", "target", "dest", "destination")


def load_catalog(
    courses_dir: Path, extra: list[tuple[Path, ColumnMapping]] | None = None
) -> tuple[list[Course], list[LoadReport]]:
    """Merged courses sorted by id, and one report per source file (built-in ones first, then ``extra``).

    A missing built-in file gives a report with a note. The number of merged duplicates is
    ``sum(report.kept) - len(courses)``.
    """
    courses: list[Course] = []
    reports: list[LoadReport] = []
    for source in BUILTIN_SOURCES.values():
        path = courses_dir / source.filename
        if not path.is_file():
            reports.append(LoadReport(source=source.name, file=str(path), notes=["file not found"]))
            continue
        loaded, report = source.load(path)
        courses += loaded
        reports.append(report)
    for path, mapping in extra or []:
        if not path.is_file():
            reports.append(LoadReport(source=mapping.source, file=str(path), notes=["file not found"]))
            continue
        loaded, report = generic.load(path, mapping)
        courses += loaded
        reports.append(report)
    merged = merge_duplicates(courses)
    for report in reports:
        log.info(report.summary())
    log.info("merged %d duplicate records into %d courses", len(courses) - len(merged), len(merged))
    return merged, reports


def merge_duplicates(courses: Iterable[Course]) -> list[Course]:
    """One record per course across sources, sorted by id; see the module docstring for the rules."""
    ordered = sorted(courses, key=lambda course: (_rank(course.source), course.source, course.id))
    groups: list[list[Course]] = []
    sources: list[set[str]] = []
    by_key: dict[tuple[str, ...], list[int]] = {}
    for course in ordered:
        keys = match_keys(course)
        candidates = sorted({index for key in keys for index in by_key.get(key, [])})
        target = next((index for index in candidates if course.source not in sources[index]), None)
        if target is None:
            target = len(groups)
            groups.append([])
            sources.append(set())
        groups[target].append(course)
        sources[target].add(course.source)
        for key in keys:
            indexes = by_key.setdefault(key, [])
            if target not in indexes:
                indexes.append(target)
    return sorted((_merge(group) for group in groups), key=lambda course: course.id)


def match_keys(course: Course) -> list[tuple[str, ...]]:
    """Keys under which two records are the same course: title + provider, and the normalized URL."""
    return record_keys(course.title, course.provider, course.url)


def record_keys(title: str, provider: str | None, url: str | None) -> list[tuple[str, ...]]:
    """``match_keys`` from the bare fields, e.g. for rows of the snapshot's course table."""
    keys: list[tuple[str, ...]] = []
    provider = normalize_title(provider or "")
    title = normalize_title(title)
    if provider and title and provider not in _MARKETPLACES:
        keys.append(("title", title, provider))
    normalized = normalize_url(url)
    if normalized:
        keys.append(("url", normalized))
    return keys


def normalize_url(url: str | None) -> str | None:
    """host/path, lower-case host without 'www.', no scheme, query, fragment or trailing slash.

    Affiliate deeplinks are unwrapped to the URL they point at, and Udemy's '/course/<slug>' and older
    '/<slug>' forms are the same page. A bare host (a provider's home page) is no course URL: None.
    """
    url = (url or "").strip()
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"https://{url}")
    for name, value in parse_qsl(parts.query):
        if name.lower() in _WRAPPED_URL_PARAMS and value.startswith(("http://", "https://")):
            return normalize_url(value)
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    if not host or not path:
        return None
    if host == "udemy.com" and path.startswith("/course/"):
        path = path.removeprefix("/course")
    return f"{host}{path}"


def _rank(source: str) -> int:
    return PRIORITY.index(source) if source in PRIORITY else len(PRIORITY)


def _merge(group: list[Course]) -> Course:
    """The first (highest-priority) record, its gaps filled from the others in priority order."""
    primary, others = group[0], group[1:]
    if not others:
        return primary
    data = primary.model_dump()
    for course in others:
        for name in ("url", "description", "provider", "language", "location"):
            if data[name] is None:
                data[name] = getattr(course, name)
        for name in ("level", "format"):
            if data[name] == "unknown":
                data[name] = getattr(course, name)
        # Fields that only make sense together are taken together, never mixed from two sources.
        known = course.price is not None or course.free is not None
        if data["price"] is None and data["free"] is None and known:
            data.update(price=course.price, currency=course.currency, free=course.free)
        if data["duration_hours"] is None and data["duration_text"] is None:
            data.update(duration_hours=course.duration_hours, duration_text=course.duration_text)
        data["raw_skills"] = list(dict.fromkeys([*data["raw_skills"], *course.raw_skills]))
        data["esco_skills"] = list(dict.fromkeys([*data["esco_skills"], *course.esco_skills]))
        data["start_dates"] = sorted({*data["start_dates"], *course.start_dates})
    data["also_in"] = sorted({*primary.also_in, *(course.id for course in others)})
    data.pop("has_description")
    return Course(**data)
