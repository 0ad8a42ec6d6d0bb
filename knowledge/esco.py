"""ESCO loader for the official CSV download layout (v1.1.x and v1.2.x), English + German merged by URI.

Relations in v1.1.x are language-neutral (``occupationSkillRelations.csv``); v1.2.x ships them per language
(``occupationSkillRelations_en.csv``). German skills come either as the full ``skills_de.csv`` or as the
derived ``skills_de_labels_descriptions.csv`` (preferred label + description only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from knowledge.csvio import iter_dicts, split_labels
from knowledge.report import LoadReport

OCCUPATION_PREFIX = "http://data.europa.eu/esco/occupation/"
SKILL_PREFIX = "http://data.europa.eu/esco/skill/"


class EscoFilesMissing(FileNotFoundError):
    """Raised with the list of files a user must provide; the CLI prints it as is."""


def required_files(esco_dir: Path) -> list[Path]:
    return [esco_dir / "occupations_en.csv", esco_dir / "skills_en.csv"]


def relations_file(esco_dir: Path) -> Path | None:
    for name in ("occupationSkillRelations.csv", "occupationSkillRelations_en.csv"):
        if (esco_dir / name).exists():
            return esco_dir / name
    return None


def check_files(esco_dir: Path) -> None:
    missing = [p for p in required_files(esco_dir) if not p.exists()]
    if relations_file(esco_dir) is None:
        missing.append(esco_dir / "occupationSkillRelations.csv (or occupationSkillRelations_en.csv)")
    if missing:
        names = "\n  ".join(str(p) for p in missing)
        raise EscoFilesMissing(
            f"ESCO files missing:\n  {names}\n"
            "Get the ESCO CSV download (classification, English, CSV) from "
            "https://esco.ec.europa.eu/en/use-esco/download and unzip it there, "
            "or run `craft data fetch esco` with internet access."
        )


@dataclass
class EscoTables:
    """The taxonomy as flat tables; list-valued columns hold labels in their ESCO order."""

    occupations: pd.DataFrame
    skills: pd.DataFrame
    relations: pd.DataFrame
    isco_groups: pd.DataFrame
    skill_broader: pd.DataFrame
    skill_hierarchy: pd.DataFrame
    reports: list[LoadReport] = field(default_factory=list)


def _concept_rows(path: Path, source: str, prefix: str, report_list: list[LoadReport]) -> dict[str, dict]:
    """Read one concept file into ``uri -> row``; rows with a foreign or missing URI are rejected."""
    report = LoadReport(source=source, file=str(path))
    rows: dict[str, dict] = {}
    for line, row, fields, header in iter_dicts(path):
        report.rows += 1
        if row is None:
            report.reject(line, f"field count: {len(fields)} fields, header has {len(header)}")
            continue
        uri = (row.get("conceptUri") or row.get("concept_uri") or "").strip()
        if not uri.startswith(prefix):
            report.reject(line, f"bad uri: {uri[:80]!r}")
            continue
        if uri in rows:
            report.reject(line, f"duplicate uri: {uri}")
            continue
        rows[uri] = row
        report.kept += 1
    report_list.append(report)
    return rows


def _german_skill_file(de_dir: Path) -> Path | None:
    for name in ("skills_de.csv", "skills_de_labels_descriptions.csv"):
        if (de_dir / name).exists():
            return de_dir / name
    return None


def _occupations(en_dir: Path, de_dir: Path | None, reports: list[LoadReport]) -> pd.DataFrame:
    en = _concept_rows(en_dir / "occupations_en.csv", "esco.occupations.en", OCCUPATION_PREFIX, reports)
    de: dict[str, dict] = {}
    if de_dir and (de_dir / "occupations_de.csv").exists():
        de = _concept_rows(de_dir / "occupations_de.csv", "esco.occupations.de", OCCUPATION_PREFIX, reports)
    records = []
    for uri in sorted(set(en) | set(de)):
        e, d = en.get(uri, {}), de.get(uri, {})
        records.append(
            {
                "uri": uri,
                "isco_group": (e.get("iscoGroup") or d.get("iscoGroup") or "").strip(),
                "code": (e.get("code") or d.get("code") or "").strip(),
                "pref_en": (e.get("preferredLabel") or "").strip(),
                "pref_de": (d.get("preferredLabel") or "").strip(),
                "alt_en": split_labels(e.get("altLabels")),
                "alt_de": split_labels(d.get("altLabels")),
                "hidden_en": split_labels(e.get("hiddenLabels")),
                "hidden_de": split_labels(d.get("hiddenLabels")),
                "desc_en": (e.get("description") or "").strip(),
                "desc_de": (d.get("description") or "").strip(),
                "in_en": uri in en,
            }
        )
    return pd.DataFrame.from_records(records)


def _skills(en_dir: Path, de_dir: Path | None, reports: list[LoadReport]) -> pd.DataFrame:
    en = _concept_rows(en_dir / "skills_en.csv", "esco.skills.en", SKILL_PREFIX, reports)
    de: dict[str, dict] = {}
    de_file = _german_skill_file(de_dir) if de_dir else None
    if de_file:
        de = _concept_rows(de_file, "esco.skills.de", SKILL_PREFIX, reports)
    records = []
    for uri in sorted(set(en) | set(de)):
        e, d = en.get(uri, {}), de.get(uri, {})
        records.append(
            {
                "uri": uri,
                "skill_type": (e.get("skillType") or d.get("skillType") or "").strip(),
                "reuse_level": (e.get("reuseLevel") or d.get("reuseLevel") or "").strip(),
                "pref_en": (e.get("preferredLabel") or "").strip(),
                "pref_de": (d.get("preferredLabel") or d.get("preferred_label") or "").strip(),
                "alt_en": split_labels(e.get("altLabels")),
                "alt_de": split_labels(d.get("altLabels")),
                "hidden_en": split_labels(e.get("hiddenLabels")),
                "desc_en": (e.get("description") or "").strip(),
                "desc_de": (d.get("description") or "").strip(),
                "in_en": uri in en,
            }
        )
    return pd.DataFrame.from_records(records)


def _relations(
    path: Path, occupations: set[str], skills: set[str], reports: list[LoadReport]
) -> pd.DataFrame:
    report = LoadReport(source="esco.relations", file=str(path))
    records: list[tuple[str, str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for line, row, fields, header in iter_dicts(path):
        report.rows += 1
        if row is None:
            report.reject(line, f"field count: {len(fields)} fields, header has {len(header)}")
            continue
        occ, skill = row["occupationUri"].strip(), row["skillUri"].strip()
        relation = row["relationType"].strip()
        if relation not in ("essential", "optional"):
            report.reject(line, f"relation type: {relation!r}")
        elif occ not in occupations:
            report.reject(line, f"unknown occupation: {occ}")
        elif skill not in skills:
            report.reject(line, f"unknown skill: {skill}")
        elif (occ, skill) in seen:
            report.reject(line, f"duplicate relation: {occ} {skill}")
        else:
            seen.add((occ, skill))
            records.append((occ, skill, relation, row.get("skillType", "").strip()))
            report.kept += 1
    reports.append(report)
    return pd.DataFrame.from_records(
        records, columns=["occupation_uri", "skill_uri", "relation", "skill_type"]
    )


def _isco_groups(en_dir: Path, de_dir: Path | None, reports: list[LoadReport]) -> pd.DataFrame:
    prefix = "http://data.europa.eu/esco/isco/"
    en = _concept_rows(en_dir / "ISCOGroups_en.csv", "esco.isco.en", prefix, reports)
    de: dict[str, dict] = {}
    if de_dir and (de_dir / "ISCOGroups_de.csv").exists():
        de = _concept_rows(de_dir / "ISCOGroups_de.csv", "esco.isco.de", prefix, reports)
    records = [
        {
            "uri": uri,
            "code": (en.get(uri, {}).get("code") or de.get(uri, {}).get("code") or "").strip(),
            "label_en": (en.get(uri, {}).get("preferredLabel") or "").strip(),
            "label_de": (de.get(uri, {}).get("preferredLabel") or "").strip(),
        }
        for uri in sorted(set(en) | set(de))
    ]
    return pd.DataFrame.from_records(records, columns=["uri", "code", "label_en", "label_de"])


def _skill_broader(en_dir: Path, reports: list[LoadReport]) -> pd.DataFrame:
    path = en_dir / "broaderRelationsSkillPillar.csv"
    if not path.exists():
        path = en_dir / "broaderRelationsSkillPillar_en.csv"
    report = LoadReport(source="esco.skill_broader", file=str(path))
    records = []
    if path.exists():
        for line, row, fields, _ in iter_dicts(path):
            report.rows += 1
            if row is None or not row.get("conceptUri") or not row.get("broaderUri"):
                report.reject(line, f"incomplete row: {len(fields)} fields")
                continue
            records.append((row["conceptUri"].strip(), row["broaderUri"].strip()))
            report.kept += 1
    else:
        report.notes.append("file missing: skill groups unavailable")
    reports.append(report)
    return pd.DataFrame.from_records(records, columns=["uri", "broader_uri"])


def _skill_hierarchy(en_dir: Path, reports: list[LoadReport]) -> pd.DataFrame:
    """Flatten the 4-level hierarchy into ``(uri, label, code, level, parent_uri)``."""
    path = en_dir / "skillsHierarchy_en.csv"
    report = LoadReport(source="esco.skill_hierarchy", file=str(path))
    nodes: dict[str, tuple[str, str, int, str]] = {}
    if path.exists():
        for line, row, fields, _ in iter_dicts(path, pad_short=True):
            report.rows += 1
            if row is None:
                report.reject(line, f"field count: {len(fields)}")
                continue
            parent = ""
            for level in range(4):
                uri = row.get(f"Level {level} URI", "").strip()
                if not uri:
                    break
                nodes.setdefault(
                    uri,
                    (
                        row.get(f"Level {level} preferred term", "").strip(),
                        row.get(f"Level {level} code", ""),
                        level,
                        parent,
                    ),
                )
                parent = uri
            report.kept += 1
    reports.append(report)
    records = [(uri, *values) for uri, values in sorted(nodes.items())]
    return pd.DataFrame.from_records(records, columns=["uri", "label", "code", "level", "parent_uri"])


def load_esco(en_dir: Path, de_dir: Path | None = None) -> EscoTables:
    """Load and merge; an occupation present only in German (no English row) is kept, flagged ``in_en``."""
    check_files(en_dir)
    reports: list[LoadReport] = []
    occupations = _occupations(en_dir, de_dir, reports)
    skills = _skills(en_dir, de_dir, reports)
    relations = _relations(relations_file(en_dir), set(occupations.uri), set(skills.uri), reports)  # type: ignore[arg-type]
    # An occupation known only from relations (no row in any language) cannot be named: report it.
    only_de = occupations[~occupations.in_en]
    if len(only_de):
        reports[0].notes.append(
            f"{len(only_de)} occupation(s) have no English row, kept with German labels: "
            + ", ".join(f"{r.uri} ({r.pref_de})" for r in only_de.itertuples())
        )
    return EscoTables(
        occupations=occupations,
        skills=skills,
        relations=relations,
        isco_groups=_isco_groups(en_dir, de_dir, reports),
        skill_broader=_skill_broader(en_dir, reports),
        skill_hierarchy=_skill_hierarchy(en_dir, reports),
        reports=reports,
    )
