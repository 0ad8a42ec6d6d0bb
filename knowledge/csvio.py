"""CSV reading that keeps physical line numbers, so every rejected row can be pointed at."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

csv.field_size_limit(sys.maxsize)


def iter_records(
    path: Path, *, skip_lines: int = 0, delimiter: str = ",", encoding: str = "utf-8-sig"
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(start_line, fields)`` per CSV record; multi-line quoted fields keep their start line."""
    with path.open(encoding=encoding, newline="") as handle:
        for _ in range(skip_lines):
            handle.readline()
        reader = csv.reader(handle, delimiter=delimiter)
        start = skip_lines + 1
        for fields in reader:
            yield start, fields
            start = skip_lines + reader.line_num + 1


def iter_dicts(
    path: Path,
    *,
    skip_lines: int = 0,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    pad_short: bool = False,
) -> Iterator[tuple[int, dict[str, str] | None, list[str], list[str]]]:
    """Yield ``(line, row_or_None, fields, header)``; ``None`` when the field count is off.

    ``pad_short`` accepts rows that omit trailing empty cells (some ESCO exports do).
    """
    records = iter_records(path, skip_lines=skip_lines, delimiter=delimiter, encoding=encoding)
    try:
        _, header = next(records)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    for line, fields in records:
        if pad_short and 0 < len(fields) < len(header):
            fields = fields + [""] * (len(header) - len(fields))
        if len(fields) != len(header):
            yield line, None, fields, header
        else:
            yield line, dict(zip(header, fields, strict=True)), fields, header


def split_labels(value: str | None) -> list[str]:
    """ESCO multi-valued cells hold one label per line; blank lines and duplicates are dropped."""
    if not value:
        return []
    seen: dict[str, None] = {}
    for part in value.replace("\r", "\n").split("\n"):
        part = " ".join(part.split())
        if part:
            seen.setdefault(part, None)
    return list(seen)
