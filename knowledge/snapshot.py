"""One versioned knowledge snapshot from all sources, rebuilt only when an input (or this schema) changes.

Layout: ``<store>/snapshots/<version>/*.parquet`` + ``manifest.json``; ``<store>/snapshots/CURRENT`` names the
active version. The version is a hash of every input file's checksum, so identical inputs give an identical
version and a rebuild is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field
from rich.console import Console

from craft.settings import Settings
from knowledge.ba import load_ba
from knowledge.courses.catalog import load_catalog
from knowledge.esco import check_files, load_esco
from knowledge.labels import build_labels, title_hints
from knowledge.report import LoadReport

SCHEMA_VERSION = 2  # 2: "/r" gender endings normalized
TABLES = (
    "occupations",
    "skills",
    "relations",
    "isco_groups",
    "skill_broader",
    "skill_hierarchy",
    "ba_occupation_map",
    "ba_skill_map",
    "ba_titles",
    "labels",
    "title_hints",
    "courses",
)


class SourceFile(BaseModel):
    path: str
    sha256: str
    bytes: int


class Manifest(BaseModel):
    """What a snapshot was built from and what went in; the CLI and the benchmarks print from it."""

    version: str
    schema_version: int = SCHEMA_VERSION
    built_at: str
    build_seconds: float
    sources: list[SourceFile]
    row_counts: dict[str, int]
    reports: list[LoadReport] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_files(settings: Settings) -> list[Path]:
    """Every file the build reads, in a stable order."""
    files: list[Path] = []
    for folder in (settings.esco_path, settings.esco_de_path, settings.ba_path, settings.courses_path):
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".json", ".jsonl"))
    return files


def compute_version(settings: Settings) -> tuple[str, list[SourceFile]]:
    sources = [
        SourceFile(path=str(p.relative_to(settings.data_dir)), sha256=_sha256(p), bytes=p.stat().st_size)
        for p in input_files(settings)
    ]
    payload = json.dumps([SCHEMA_VERSION, [(s.path, s.sha256) for s in sources]]).encode()
    return hashlib.sha256(payload).hexdigest()[:12], sources


def snapshots_dir(settings: Settings) -> Path:
    return settings.store_dir / "snapshots"


def current_version(settings: Settings) -> str | None:
    marker = snapshots_dir(settings) / "CURRENT"
    return marker.read_text().strip() if marker.exists() else None


def current_path(settings: Settings) -> Path | None:
    version = current_version(settings)
    path = snapshots_dir(settings) / version if version else None
    return path if path and (path / "manifest.json").exists() else None


def load_manifest(path: Path) -> Manifest:
    return Manifest.model_validate_json((path / "manifest.json").read_text())


def build_snapshot(settings: Settings, *, force: bool = False, console: Console | None = None) -> Manifest:
    """Build (or reuse) the snapshot for the current inputs and make it CURRENT."""
    console = console or Console(stderr=True)
    check_files(settings.esco_path)
    version, sources = compute_version(settings)
    target = snapshots_dir(settings) / version
    if (target / "manifest.json").exists() and not force:
        _set_current(settings, version)
        console.print(f"[green]knowledge snapshot {version} is up to date[/green]")
        return load_manifest(target)

    started = time.perf_counter()
    with console.status("loading ESCO…"):
        esco = load_esco(
            settings.esco_path, settings.esco_de_path if settings.esco_de_path.is_dir() else None
        )
    with console.status("loading Bundesagentur tables…"):
        ba = load_ba(settings.ba_path)
    with console.status("loading course catalogs…"):
        courses, course_reports = load_catalog(settings.courses_path)
    with console.status("building the label table…"):
        labels = build_labels(esco, ba)

    empty = pd.DataFrame()
    tables: dict[str, pd.DataFrame] = {
        "occupations": esco.occupations,
        "skills": esco.skills,
        "relations": esco.relations,
        "isco_groups": esco.isco_groups,
        "skill_broader": esco.skill_broader,
        "skill_hierarchy": esco.skill_hierarchy,
        "ba_occupation_map": ba.occupation_map if ba else empty,
        "ba_skill_map": ba.skill_map if ba else empty,
        "ba_titles": ba.titles if ba else empty,
        "labels": labels,
        "title_hints": title_hints(ba),
        "courses": pd.DataFrame.from_records([c.model_dump(mode="json") for c in courses]),
    }
    staging = target.with_name(version + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, frame in tables.items():
        frame.to_parquet(staging / f"{name}.parquet", index=False)
    manifest = Manifest(
        version=version,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 2),
        sources=sources,
        row_counts={name: len(frame) for name, frame in tables.items()},
        reports=esco.reports + (ba.reports if ba else []) + course_reports,
        notes=[_course_note(course_reports, courses)],
    )
    (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # readers never see a half-written snapshot
    _set_current(settings, version)
    return manifest


def _course_note(reports: list[LoadReport], courses: list) -> str:  # type: ignore[type-arg]
    merged = sum(r.kept for r in reports) - len(courses)
    described = sum(c.has_description for c in courses)
    return (
        f"courses: {merged:,} duplicates merged across sources; {described:,} of {len(courses):,} described"
    )


def _set_current(settings: Settings, version: str) -> None:
    marker = snapshots_dir(settings) / "CURRENT"
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(version + "\n")
    tmp.replace(marker)
