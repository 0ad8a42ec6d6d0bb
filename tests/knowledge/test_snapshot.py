"""Knowledge snapshot: versioned by input checksums, reused when unchanged, rebuilt on any change."""

from __future__ import annotations

import io
import json
import os

import pandas as pd
import pytest
from rich.console import Console

from craft.settings import Settings
from knowledge.courses.catalog import load_catalog
from knowledge.esco import EscoFilesMissing
from knowledge.snapshot import (
    SCHEMA_VERSION,
    TABLES,
    build_snapshot,
    compute_version,
    current_path,
    current_version,
    input_files,
    load_manifest,
    snapshots_dir,
)


def _quiet() -> Console:
    return Console(file=io.StringIO(), stderr=False)


def test_build_writes_tables_manifest_and_current(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings
    assert current_path(settings) is None
    assert current_version(settings) is None
    manifest = build_snapshot(settings, console=_quiet())
    path = snapshots_dir(settings) / manifest.version
    assert current_version(settings) == manifest.version
    assert current_path(settings) == path
    assert (snapshots_dir(settings) / "CURRENT").read_text() == manifest.version + "\n"
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [*(f"{t}.parquet" for t in TABLES), "manifest.json"]
    )
    assert not list(snapshots_dir(settings).glob("*.tmp"))
    courses, _ = load_catalog(settings.courses_path)
    assert manifest.row_counts == {
        "occupations": 6,
        "skills": 10,
        "relations": 13,
        "isco_groups": 6,
        "skill_broader": 6,
        "skill_hierarchy": 6,
        "ba_occupation_map": 9,
        "ba_skill_map": 4,
        "ba_titles": 8,
        "labels": 100,
        "title_hints": 2,
        "courses": len(courses),
    }
    for name, count in manifest.row_counts.items():
        assert len(pd.read_parquet(path / f"{name}.parquet")) == count
    assert manifest.schema_version == SCHEMA_VERSION
    assert len(manifest.version) == 12


def test_manifest_sources_and_reports(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings
    manifest = build_snapshot(settings, console=_quiet())
    paths = [s.path for s in manifest.sources]
    assert "esco/en/occupations_en.csv" in paths
    assert "esco/de/occupations_de.csv" in paths
    assert "ba/berufsbenennungen_kldb2010.csv" in paths
    assert "courses/coursera_courses_2023.csv" in paths
    assert len(paths) == len(input_files(settings))
    assert all(len(s.sha256) == 64 and s.bytes > 0 for s in manifest.sources)
    sources = [r.source for r in manifest.reports]
    assert sources[:9] == [
        "esco.occupations.en",
        "esco.occupations.de",
        "esco.skills.en",
        "esco.skills.de",
        "esco.relations",
        "esco.isco.en",
        "esco.isco.de",
        "esco.skill_broader",
        "esco.skill_hierarchy",
    ]
    assert sources[9:12] == ["ba.occupation_map", "ba.skill_map", "ba.titles"]
    assert "coursera" in sources[12:]
    by_source = {r.source: r for r in manifest.reports}
    assert by_source["esco.relations"].rejected_count == 1
    assert by_source["ba.skill_map"].rejected[0].line == 21
    # the manifest on disk is what build_snapshot returned
    on_disk = load_manifest(snapshots_dir(settings) / manifest.version)
    assert on_disk == manifest
    assert json.loads((snapshots_dir(settings) / manifest.version / "manifest.json").read_text())["version"]


def test_unchanged_inputs_reuse_the_snapshot(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings
    first = build_snapshot(settings, console=_quiet())
    parquet = snapshots_dir(settings) / first.version / "labels.parquet"
    old = parquet.stat().st_mtime_ns - 5_000_000_000
    os.utime(parquet, ns=(old, old))  # make any rewrite visible regardless of timestamp resolution
    console = _quiet()
    second = build_snapshot(settings, console=console)
    assert second.version == first.version
    assert second.built_at == first.built_at
    assert parquet.stat().st_mtime_ns == old
    assert "up to date" in console.file.getvalue()
    assert [p.name for p in snapshots_dir(settings).iterdir() if p.is_dir()] == [first.version]


def test_changed_input_gives_new_version_and_current(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings
    first = build_snapshot(settings, console=_quiet())
    titles = settings.ba_path / "berufsbenennungen_kldb2010.csv"
    text = titles.read_text(encoding="utf-8").replace("Abfallberater/in;42313\n", "")
    titles.write_text(text, encoding="utf-8")
    assert compute_version(settings)[0] != first.version
    second = build_snapshot(settings, console=_quiet())
    assert second.version != first.version
    assert second.row_counts["ba_titles"] == 7
    assert current_version(settings) == second.version
    assert current_path(settings) == snapshots_dir(settings) / second.version
    # the old snapshot stays on disk; going back to the old inputs reuses it
    assert (snapshots_dir(settings) / first.version / "manifest.json").exists()
    titles.write_text(text.replace(";\n", "Abfallberater/in;42313\n;\n", 1), encoding="utf-8")
    assert build_snapshot(settings, console=_quiet()).version == first.version
    assert current_version(settings) == first.version


def test_force_rebuilds_same_version(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings
    first = build_snapshot(settings, console=_quiet())
    parquet = snapshots_dir(settings) / first.version / "labels.parquet"
    old = parquet.stat().st_mtime_ns - 5_000_000_000
    os.utime(parquet, ns=(old, old))
    rebuilt = build_snapshot(settings, force=True, console=_quiet())
    assert rebuilt.version == first.version
    assert parquet.stat().st_mtime_ns != old
    assert rebuilt.row_counts == first.row_counts
    assert current_version(settings) == first.version


def test_version_depends_on_contents_not_mtime(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings
    version, sources = compute_version(settings)
    path = settings.esco_path / "skills_en.csv"
    os.utime(path, (1_000_000, 1_000_000))
    assert compute_version(settings)[0] == version
    assert [s.path for s in sources] == [str(p.relative_to(settings.data_dir)) for p in input_files(settings)]


def test_current_path_none_when_marker_points_nowhere(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings
    snapshots_dir(settings).mkdir(parents=True)
    (snapshots_dir(settings) / "CURRENT").write_text("deadbeef0000\n")
    assert current_version(settings) == "deadbeef0000"
    assert current_path(settings) is None


def test_without_optional_sources(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings.model_copy(
        update={"esco_de_dir": "missing-de", "ba_dir": "missing-ba", "courses_dir": "missing-courses"}
    )
    manifest = build_snapshot(settings, console=_quiet())
    counts = manifest.row_counts
    assert counts["occupations"] == 5
    assert counts["ba_occupation_map"] == counts["ba_titles"] == counts["title_hints"] == 0
    assert counts["courses"] == 0
    assert all(s.path.startswith("esco/en/") for s in manifest.sources)


def test_missing_esco_raises_before_anything_is_written(tiny_data_settings: Settings) -> None:
    settings = tiny_data_settings.model_copy(update={"esco_dir": "nowhere"})
    with pytest.raises(EscoFilesMissing):
        build_snapshot(settings, console=_quiet())
    assert not snapshots_dir(settings).exists()
