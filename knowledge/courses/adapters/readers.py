"""Record readers that remember where each record starts, so a reject can point a human at the line."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from knowledge.courses.schema import Course, course_id, normalize_title
from knowledge.report import LoadReport

# Course descriptions exceed the csv module's 128 KiB default field limit in some exports.
csv.field_size_limit(16 * 1024 * 1024)


def csv_records(path: Path, report: LoadReport, delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """(start line, header → value) per record; rows with the wrong column count are rejected here.

    Multi-line quoted fields are why the start line is tracked: ``line_num`` is where a record *ends*.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            report.notes.append("empty file")
            return
        header = [name.strip() for name in header]
        end = reader.line_num
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                report.rows += 1
                report.reject(start, f"csv error: {error}")
                end = reader.line_num
                continue
            end = reader.line_num
            if not row:  # blank line, not a record
                continue
            report.rows += 1
            if len(row) != len(header):
                report.reject(start, f"wrong column count: expected {len(header)}, got {len(row)}")
                continue
            yield start, dict(zip(header, row, strict=True))


def jsonl_records(path: Path, report: LoadReport) -> Iterator[tuple[int, dict[str, object]]]:
    """(line, object) per JSON Lines record; lines that are not a JSON object are rejected."""
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            report.rows += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                report.reject(number, f"bad json: {error.msg} (column {error.colno})")
                continue
            if not isinstance(record, dict):
                report.reject(number, f"bad json: expected an object, got {type(record).__name__}")
                continue
            yield number, record


def read_json(path: Path, report: LoadReport) -> tuple[object | None, str]:
    """(document, raw text); the document is None when it does not parse, with the error as a reject."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        return json.loads(text), text
    except json.JSONDecodeError as error:
        report.reject(error.lineno, f"bad json: {error.msg}")
        return None, text


def array_lines(text: str, key: str, expected: list[object]) -> list[int]:
    """Start line of each element of the JSON array under ``"key": [``, for reject reports.

    ``json`` keeps no positions, so the array is re-decoded element by element; if that does not reproduce
    ``expected`` exactly (the key also appears elsewhere, odd layout) every line is 0, i.e. unknown.
    """
    unknown = [0] * len(expected)
    decoder = json.JSONDecoder()
    for match in re.finditer(rf'"{re.escape(key)}"\s*:\s*\[', text):
        position, starts, values = match.end(), [], []
        counted, line = 0, 1
        try:
            while True:
                position = _skip(text, position)
                if text[position] == "]":
                    break
                value, end = decoder.raw_decode(text, position)
                line += text.count("\n", counted, position)
                counted = position
                starts.append(line)
                values.append(value)
                position = _skip(text, end)
                if text[position] == ",":
                    position += 1
        except (json.JSONDecodeError, IndexError):
            continue
        if values == expected:
            return starts
    return unknown


def _skip(text: str, position: int) -> int:
    while text[position] in " \t\r\n":
        position += 1
    return position


class Reject(Exception):
    """Raised by a record builder when the record cannot become a Course; the message is the reason."""


def make_course(source: str, source_id: str | None, title: str | None, **fields: object) -> Course:
    """A Course with its stable id; records without any id fall back to their normalized title."""
    if not title or not title.strip():
        raise Reject("no title")
    key = source_id or f"title:{normalize_title(title)}"
    return Course(id=course_id(source, key), source=source, source_id=key, title=title, **fields)  # type: ignore[arg-type]


class Collector:
    """Builds one source's Courses: invalid records and repeated source ids become rejects, not crashes."""

    def __init__(self, report: LoadReport) -> None:
        self.report = report
        self.courses: list[Course] = []
        self._seen: dict[str, int] = {}

    def add(self, line: int, build: Callable[[], Course]) -> Course | None:
        try:
            course = build()
        except Reject as error:
            self.report.reject(line, str(error))
            return None
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "record"
            reason = "no title" if field == "title" else f"invalid {field}: {first['msg']}"
            self.report.reject(line, reason)
            return None
        if course.id in self._seen:
            self.report.reject(line, f"duplicate: same source id as line {self._seen[course.id]}")
            return None
        self._seen[course.id] = line
        self.courses.append(course)
        self.report.kept += 1
        return course

    def result(self) -> tuple[list[Course], LoadReport]:
        return self.courses, self.report
