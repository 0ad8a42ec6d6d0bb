"""Weiterbildungssuche of the Bundesagentur für Arbeit: one ``termin`` (a dated run of an offer) per Course.

Decisions a reviewer should know:

* ``kostenWert`` 0.0 does not mean free: those offers are funded through a Bildungsgutschein and their
  ``kostenBemerkung`` says what the fee includes. Only a positive value becomes a price; 0/None → unknown.
* ``beginn`` is epoch milliseconds at German midnight, so it is converted in Europe/Berlin, not UTC.
  When it is null, dd.mm.yyyy dates from ``bemerkungZeit`` are used if the text announces "Starttermine".
* ``dauer`` is a duration class ("mehr als 1 Monat bis 3 Monate"): kept as text, no hours derived.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from knowledge.courses.adapters import normalize as norm
from knowledge.courses.adapters.readers import Collector, Reject, array_lines, make_course, read_json
from knowledge.courses.schema import Course, Format
from knowledge.report import LoadReport

SOURCE = "arbeitsagentur"
_BERLIN = ZoneInfo("Europe/Berlin")
# Unterrichtsform ids per the API spec: 1xx Präsenz, 2xx digital, 3xx kombiniert, 4xx Fernunterricht.
_FORMAT_BY_GROUP: dict[int, Format] = {1: "in-person", 2: "online", 3: "blended", 4: "online"}
_FORMAT_WORDS: list[tuple[str, Format]] = [
    ("blended", "blended"),
    ("combined", "blended"),
    ("hybrid", "blended"),
    ("präsenz", "in-person"),
    ("seminar", "in-person"),
    ("fern", "online"),
    ("virtuell", "online"),
    ("e-learning", "online"),
    ("online", "online"),
]


def load(path: Path) -> tuple[list[Course], LoadReport]:
    """A saved API response page, e.g. arbeitsagentur_weiterbildungssuche_sample_2023.json."""
    report = LoadReport(source=SOURCE, file=str(path))
    payload, text = read_json(path, report)
    if not isinstance(payload, dict):
        if payload is not None:
            report.notes.append("response is not a JSON object")
        return [], report
    termine = _termine(payload)
    return courses_from_response(payload, report, lines=array_lines(text, "termine", termine)), report


def courses_from_response(payload: dict, report: LoadReport, lines: list[int] | None = None) -> list[Course]:
    """Courses of one response page (``_embedded.termine``); rows/kept/rejects are added to ``report``.

    ``lines`` gives each termin's line in a saved file; a live client leaves it out (lines read as 0).
    """
    termine = _termine(payload)
    if not termine and "_embedded" not in payload:
        report.notes.append("response has no _embedded.termine")
    collector = Collector(report)
    for index, termin in enumerate(termine):
        report.rows += 1
        line = lines[index] if lines is not None and index < len(lines) else 0
        collector.add(line, lambda termin=termin: _course(termin))
    return collector.courses


def _termine(payload: dict) -> list[object]:
    embedded = payload.get("_embedded")
    termine = embedded.get("termine") if isinstance(embedded, dict) else None
    return termine if isinstance(termine, list) else []


def _course(termin: object) -> Course:
    if not isinstance(termin, dict):
        raise Reject(f"bad json record: expected an object, got {type(termin).__name__}")
    angebot = termin.get("angebot")
    if not isinstance(angebot, dict):
        raise Reject("bad json record: no angebot")
    price, currency, free = _price(termin.get("kostenWert"), termin.get("kostenWaehrung"))
    title = norm.clean(angebot.get("titel"))
    keywords = norm.unique(_get(item, "suchwort") for item in angebot.get("suchworte") or [])
    return make_course(
        SOURCE,
        norm.clean(termin.get("id")),
        title,
        url=norm.clean(termin.get("link")) or norm.clean(angebot.get("link")),
        description=norm.html_to_text(angebot.get("inhalt")),
        provider=norm.clean(_get(angebot, "bildungsanbieter", "name")),
        language="de",
        duration_text=norm.clean(_get(termin, "dauer", "bezeichnung")),
        price=price,
        currency=currency,
        free=free,
        format=_format(termin.get("unterrichtsform")),
        location=norm.clean(_get(termin, "adresse", "ortStrasse", "name")),
        start_dates=_start_dates(termin),
        raw_skills=[word for word in keywords if title is None or word.lower() != title.lower()],
    )


def _get(value: object, *keys: str) -> object:
    """Nested lookup that tolerates the nulls the API returns for absent sub-objects."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _format(form: object) -> Format:
    code = _get(form, "id")
    if isinstance(code, int) and code // 100 in _FORMAT_BY_GROUP:
        return _FORMAT_BY_GROUP[code // 100]
    name = (norm.clean(_get(form, "bezeichnung")) or "").lower()
    return next((fmt for word, fmt in _FORMAT_WORDS if word in name), "unknown")


def _price(value: object, currency: object) -> tuple[float | None, str | None, bool | None]:
    try:
        amount = float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        amount = None
    if amount is None or amount <= 0:
        return None, None, None
    return amount, norm.clean(currency), False


def _start_dates(termin: dict) -> list[date]:
    begin = termin.get("beginn")
    if isinstance(begin, int | float) and not isinstance(begin, bool):
        return [datetime.fromtimestamp(begin / 1000, _BERLIN).date()]
    remark = norm.html_to_text(termin.get("bemerkungZeit"))
    if remark and "starttermin" in remark.lower():
        return norm.german_dates(remark)
    return []
