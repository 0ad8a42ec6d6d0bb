"""Bundesagentur für Arbeit tables: ESCO↔BA occupation mapping, ESCO skill↔BA competence mapping, BA titles.

The BA occupation id (``B 43412-103``) starts with the 5-digit KldB 2010 code (``43412``), which is how the
alphabetical title list (titles → KldB code) reaches ESCO. Most KldB codes map to several ESCO occupations,
so a title is an alias only where its code maps to exactly one; otherwise it is a hint naming the candidates.

The Weiterbildungssuche filters by *numeric* BERUFENET Berufs-IDs (``ids=6133``), a different id space from
the BA codes and the KldB: only the BERUFENET detail records (``codenr``) bridge the two, see
``berufenet_ids_by_code``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from knowledge.clients.berufenet import detail_records
from knowledge.clients.http import write_atomic
from knowledge.csvio import iter_records
from knowledge.report import LoadReport

OCC_MAPPING = "EURESmapping_occs_DE.csv"
SKILL_MAPPING = "EURESmapping_skills_DE.csv"
TITLES = "berufsbenennungen_kldb2010.csv"
BERUFENET_DETAILS = "berufenet/details"  # under the data dir, as `craft data fetch berufenet` writes them
MAPPING_HEADER = "Classification 1 URI"
_BA_ID = re.compile(r"^B (\d{5})-\d+$")


@dataclass
class BaTables:
    """``occupation_map`` and ``skill_map`` are the mapping rows; ``titles`` has the resolved ESCO targets."""

    occupation_map: pd.DataFrame
    skill_map: pd.DataFrame
    titles: pd.DataFrame
    reports: list[LoadReport] = field(default_factory=list)


def kldb_of(ba_id: str) -> str | None:
    """KldB 5-digit code of a BA occupation id, or None for ISCO-based ids like ``BE 3313``."""
    match = _BA_ID.match(ba_id.strip())
    return match.group(1) if match else None


def _mapping_rows(path: Path, source: str, reports: list[LoadReport]) -> list[tuple[int, list[str]]]:
    """Rows after the metadata block; the header line is found, not assumed (16 vs 17 metadata lines)."""
    report = LoadReport(source=source, file=str(path))
    rows: list[tuple[int, list[str]]] = []
    in_table = False
    for line, fields in iter_records(path):
        if not in_table:
            in_table = bool(fields) and fields[0].strip() == MAPPING_HEADER
            if in_table:
                report.notes.append(f"header on line {line}")
            continue
        report.rows += 1
        if len(fields) != 6:
            report.reject(line, f"broken quoting: {len(fields)} fields instead of 6")
            continue
        rows.append((line, [f.strip() for f in fields]))
    if not in_table:
        report.notes.append(f"no '{MAPPING_HEADER}' header found")
    reports.append(report)
    return rows


def _occupation_map(path: Path, reports: list[LoadReport]) -> pd.DataFrame:
    rows = _mapping_rows(path, "ba.occupation_map", reports)
    report = reports[-1]
    records = []
    isco_rows = 0
    for line, (uri, label_de, ba_id, ba_label, relation, note) in rows:
        if "/isco/" in uri:
            isco_rows += 1  # mappings to whole ISCO groups carry no occupation-level information
            continue
        if "/occupation/" not in uri or not ba_id:
            report.reject(line, f"not an ESCO occupation row: {uri[:60]!r}")
            continue
        records.append(
            {
                "esco_uri": uri,
                "esco_label_de": label_de,
                "ba_id": ba_id,
                "kldb": kldb_of(ba_id),
                "ba_label": ba_label,
                "relation": relation.removeprefix("skos:") or None,
                "note": note or None,
            }
        )
        report.kept += 1
    report.notes.append(f"{isco_rows} rows map to ISCO groups, not occupations (left out)")
    return pd.DataFrame.from_records(records)


def _skill_map(path: Path, reports: list[LoadReport]) -> pd.DataFrame:
    rows = _mapping_rows(path, "ba.skill_map", reports)
    report = reports[-1]
    records = []
    empty_relation = unmapped = 0
    for line, (uri, label_de, ba_id, ba_label, relation, note) in rows:
        if not uri and note == "no relation":
            unmapped += 1  # a BA competence the mapping says has no ESCO counterpart: not an error
            continue
        if "/skill/" not in uri or not ba_id:
            report.reject(line, f"not an ESCO skill row: {uri[:60]!r}")
            continue
        empty_relation += not relation
        records.append(
            {
                "esco_uri": uri,
                "esco_label_de": label_de,
                "ba_id": ba_id,
                "ba_label": ba_label,
                "relation": relation.removeprefix("skos:") or None,
                "note": note or None,
            }
        )
        report.kept += 1
    if unmapped:
        report.notes.append(f"{unmapped} BA competences marked 'no relation' to ESCO (not mapped)")
    if empty_relation:
        report.notes.append(f"{empty_relation} rows with an empty mapping relation (kept, relation None)")
    return pd.DataFrame.from_records(records)


def _titles(path: Path, occupation_map: pd.DataFrame, reports: list[LoadReport]) -> pd.DataFrame:
    report = LoadReport(source="ba.titles", file=str(path))
    by_kldb: dict[str, set[str]] = defaultdict(set)
    for kldb, uri in zip(occupation_map.kldb, occupation_map.esco_uri, strict=True):
        if isinstance(kldb, str) and kldb:  # ISCO-based ids (``BE 4110``) have no KldB code (NaN)
            by_kldb[kldb].add(uri)
    records = []
    records_iter = iter_records(path, delimiter=";")
    next(records_iter, None)  # header
    for line, fields in records_iter:
        if fields and fields[0].startswith("Erstellungsdatum"):
            report.notes.append(f"footer on line {line} skipped")
            continue
        if fields in ([], ["", ""]):
            report.notes.append(f"empty row on line {line} skipped")
            continue
        report.rows += 1
        if len(fields) != 2 or not re.fullmatch(r"\d{5}", fields[1].strip()) or not fields[0].strip():
            report.reject(line, f"not 'title;kldb5': {';'.join(fields)[:60]!r}")
            continue
        title, kldb = fields[0].strip(), fields[1].strip()
        targets = sorted(by_kldb.get(kldb, ()))
        records.append({"title": title, "kldb": kldb, "esco_uris": targets, "alias": len(targets) == 1})
        report.kept += 1
    frame = pd.DataFrame.from_records(records)
    aliases = int(frame.alias.sum()) if len(frame) else 0
    unmapped = int((frame.esco_uris.map(len) == 0).sum()) if len(frame) else 0
    report.notes.append(
        f"{aliases} titles map to exactly one ESCO occupation (aliases); "
        f"{len(frame) - aliases - unmapped} to several (hints); {unmapped} to none"
    )
    reports.append(report)
    return frame


def load_ba(ba_dir: Path) -> BaTables | None:
    """All three tables, or None when the folder is absent (BA data is optional)."""
    if not (ba_dir / OCC_MAPPING).exists():
        return None
    reports: list[LoadReport] = []
    occupation_map = _occupation_map(ba_dir / OCC_MAPPING, reports)
    skill_map = (
        _skill_map(ba_dir / SKILL_MAPPING, reports) if (ba_dir / SKILL_MAPPING).exists() else pd.DataFrame()
    )
    titles = (
        _titles(ba_dir / TITLES, occupation_map, reports) if (ba_dir / TITLES).exists() else pd.DataFrame()
    )
    return BaTables(occupation_map=occupation_map, skill_map=skill_map, titles=titles, reports=reports)


def berufenet_ids_by_code(details_dir: Path, cache_file: Path | None = None) -> dict[str, list[int]]:
    """BA occupation code (``B 43104-100``) -> BERUFENET Berufs-IDs, read from the BERUFENET detail files
    (``<id>.json`` with a ``codenr``); empty when the folder is absent (BERUFENET data is optional).

    ``cache_file`` keeps the index between processes; it is rebuilt when the number of detail files or the
    newest modification time changes (the detail files are large, the index is small).
    """
    files = sorted(details_dir.glob("*.json")) if details_dir.is_dir() else []
    if not files:
        return {}
    fingerprint = [len(files), max(f.stat().st_mtime_ns for f in files)]
    if cache_file is not None and cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
            if cached.get("fingerprint") == fingerprint:
                return {code: [int(i) for i in ids] for code, ids in cached["codes"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # a broken cache is rebuilt
    codes: dict[str, set[int]] = defaultdict(set)
    for path in files:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # an unreadable detail file only loses its own id
        for record in detail_records(payload):
            code = record.get("codenr") or record.get("codeNr")
            beruf_id = record.get("id")
            if isinstance(code, str) and code.strip() and isinstance(beruf_id, int):
                codes[" ".join(code.split())].add(beruf_id)
    index = {code: sorted(ids) for code, ids in sorted(codes.items())}
    if cache_file is not None:
        write_atomic(cache_file, json.dumps({"fingerprint": fingerprint, "codes": index}))
    return index
