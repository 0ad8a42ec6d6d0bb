"""Bundesagentur tables: header found (line 17 vs 18), ISCO rows left out, broken quoting rejected."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from tiny_data import (
    BA_TINY,
    BAKER,
    CLERK,
    NURSE,
    RADIO_ASSISTANT,
    S_CPP,
    S_MEDICATION,
    S_PYTHON,
    SOFTWARE_DEV,
    WEB_DEV,
)

from knowledge.ba import MAPPING_HEADER, BaTables, kldb_of, load_ba

HEADER_ROW = f"{MAPPING_HEADER},Classification 1 PrefLabel,Classification 2 ID,Classification 2 PrefLabel,"
HEADER_ROW += "Mapping relation,Editorial note\n"


def _copy_ba(tmp_path: Path) -> Path:
    target = tmp_path / "ba"
    shutil.copytree(BA_TINY, target)
    return target


@pytest.mark.parametrize(
    ("ba_id", "kldb"),
    [("B 43412-103", "43412"), (" B 01104-104 ", "01104"), ("BE 3313", None), ("B 4341-1", None), ("", None)],
)
def test_kldb_of(ba_id: str, kldb: str | None) -> None:
    assert kldb_of(ba_id) == kldb


def test_occupation_map(tiny_ba: BaTables) -> None:
    occ = tiny_ba.occupation_map
    assert list(occ.columns) == ["esco_uri", "esco_label_de", "ba_id", "kldb", "ba_label", "relation", "note"]
    assert len(occ) == 9
    assert not occ.esco_uri.str.contains("/isco/").any()
    report = tiny_ba.reports[0]
    assert report.source == "ba.occupation_map"
    assert (report.rows, report.kept, report.rejected_count) == (10, 9, 0)
    assert report.notes == ["header on line 17", "1 rows map to ISCO groups, not occupations (left out)"]
    nurse = occ[occ.esco_uri == NURSE].iloc[0].to_dict()
    assert pd.isna(nurse.pop("note"))  # None in a column with notes: pandas stores it as missing
    assert nurse == {
        "esco_uri": NURSE,
        "esco_label_de": "Gesundheits- und Krankenpfleger/Gesundheits- und Krankenpflegerin",
        "ba_id": "B 81302-101",
        "kldb": "81302",
        "ba_label": "Gesundheits- und Krankenpfleger/in",
        "relation": "exactMatch",  # the skos: prefix is dropped
    }
    isco_based = occ[occ.ba_id == "BE 4110"].iloc[0]
    assert isco_based.esco_uri == CLERK
    assert pd.isna(isco_based.kldb)
    assert isco_based.note == "Alternativmapping über ISCO-2008"


def test_skill_map_broken_quoting_and_no_relation(tiny_ba: BaTables) -> None:
    skills = tiny_ba.skill_map
    assert list(skills.columns) == ["esco_uri", "esco_label_de", "ba_id", "ba_label", "relation", "note"]
    report = tiny_ba.reports[1]
    assert report.source == "ba.skill_map"
    assert report.notes[0] == "header on line 18"
    assert "1 BA competences marked 'no relation' to ESCO (not mapped)" in report.notes
    assert "1 rows with an empty mapping relation (kept, relation None)" in report.notes
    # the broken row swallows the next physical line: one record of 8 fields, rejected at its start line
    assert (report.rows, report.kept, report.rejected_count) == (6, 4, 1)
    assert report.reasons == {"broken quoting": 1}
    assert report.rejected[0].line == 21
    assert report.rejected[0].reason == "broken quoting: 8 fields instead of 6"
    assert S_CPP not in set(skills.esco_uri)  # both C++ rows went into the broken record
    assert "Screenreader JAWS" not in set(skills.ba_label)  # 'no relation' is noted, not kept
    assert set(skills.esco_uri) >= {S_MEDICATION, S_PYTHON}
    python = skills[skills.esco_uri == S_PYTHON].iloc[0]
    assert pd.isna(python.relation)
    assert skills[skills.esco_uri == S_MEDICATION].iloc[0].relation == "exactMatch"


def test_titles_aliases_and_hints(tiny_ba: BaTables) -> None:
    titles = tiny_ba.titles.set_index("title")
    assert len(titles) == 8
    assert "" not in titles.index
    assert not titles.index.str.startswith("Erstellungsdatum").any()
    assert titles.loc["Bäcker/in"].esco_uris == [BAKER]
    assert titles.loc["Bäcker/in"].alias
    assert titles.loc["Krankenschwester"].esco_uris == [NURSE]
    assert titles.loc["Krankenschwester"].alias
    assert titles.loc["Kaufmann/-frau - Büromanagement"].esco_uris == [CLERK]
    # KldB 43412 maps to two ESCO occupations: a hint, not an alias
    assert titles.loc["Softwareentwickler/in"].esco_uris == sorted([SOFTWARE_DEV, WEB_DEV])
    assert not titles.loc["Softwareentwickler/in"].alias
    assert titles.loc["Abfallberater/in"].esco_uris == []
    assert not titles.loc["Abfallberater/in"].alias
    assert int(titles.alias.sum()) == 5
    report = tiny_ba.reports[2]
    assert report.source == "ba.titles"
    assert (report.rows, report.kept, report.rejected_count) == (8, 8, 0)
    assert report.notes == [
        "empty row on line 10 skipped",
        "footer on line 11 skipped",
        "5 titles map to exactly one ESCO occupation (aliases); 2 to several (hints); 1 to none",
    ]


def test_german_only_occupation_is_mapped(tiny_ba: BaTables) -> None:
    occ = tiny_ba.occupation_map
    assert occ[occ.esco_uri == RADIO_ASSISTANT].kldb.tolist() == ["81342"]


def test_header_found_not_assumed(tmp_path: Path, write_file: Callable[[str, str], Path]) -> None:
    ba = _copy_ba(tmp_path)
    lines = (ba / "EURESmapping_occs_DE.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (ba / "EURESmapping_occs_DE.csv").write_text("".join(lines[:2] + lines[14:]), encoding="utf-8")
    tables = load_ba(ba)
    assert tables is not None
    assert tables.reports[0].notes[0] == "header on line 5"
    assert len(tables.occupation_map) == 9


def test_mapping_without_header(tmp_path: Path) -> None:
    ba = tmp_path / "ba"
    ba.mkdir()
    (ba / "EURESmapping_occs_DE.csv").write_text("Mapping project name,x,,,,\n,,,,,\n", encoding="utf-8")
    tables = load_ba(ba)
    assert tables is not None
    assert tables.occupation_map.empty
    assert "no 'Classification 1 URI' header found" in tables.reports[0].notes
    assert tables.skill_map.empty and tables.titles.empty  # optional files absent
    assert len(tables.reports) == 1


def test_mapping_rows_rejected(tmp_path: Path) -> None:
    ba = tmp_path / "ba"
    ba.mkdir()
    (ba / "EURESmapping_occs_DE.csv").write_text(
        HEADER_ROW
        + f'{NURSE},"X","B 81302-101","Y",skos:exactMatch,\n'
        + 'http://data.europa.eu/esco/skill/x,"X","B 81302-101","Y",skos:exactMatch,\n'
        + f'{BAKER},"X","","Y",skos:exactMatch,\n'
        + f"{BAKER},too,few\n",
        encoding="utf-8",
    )
    (ba / "EURESmapping_skills_DE.csv").write_text(
        HEADER_ROW
        + f'{NURSE},"X","K 1","Y",skos:exactMatch,\n'
        + ',"","K 2","Z",,"no relation"\n'
        + ',"","K 3","Z",,"something else"\n',
        encoding="utf-8",
    )
    tables = load_ba(ba)
    assert tables is not None
    occ_report, skill_report = tables.reports[0], tables.reports[1]
    assert len(tables.occupation_map) == 1
    assert occ_report.reasons == {"not an ESCO occupation row": 2, "broken quoting": 1}
    assert [r.line for r in occ_report.rejected] == [5, 3, 4]  # field count is checked in a first pass
    assert tables.skill_map.empty
    assert skill_report.reasons == {"not an ESCO skill row": 2}
    assert skill_report.notes[1] == "1 BA competences marked 'no relation' to ESCO (not mapped)"


def test_titles_rejects_malformed_rows(tmp_path: Path) -> None:
    ba = _copy_ba(tmp_path)
    (ba / "berufsbenennungen_kldb2010.csv").write_text(
        "Berufsbenennungen;KldB 2010 (5-Steller)\nBäcker/in;29202\nKoch;1234\n;29202\nA;B;C\n\n",
        encoding="utf-8",
    )
    tables = load_ba(ba)
    assert tables is not None
    report = tables.reports[2]
    assert tables.titles.title.tolist() == ["Bäcker/in"]
    assert (report.rows, report.kept, report.rejected_count) == (4, 1, 3)
    assert [r.line for r in report.rejected] == [3, 4, 5]
    assert report.rejected[0].reason == "not 'title;kldb5': 'Koch;1234'"
    assert "empty row on line 6 skipped" in report.notes


def test_missing_folder_gives_none(tmp_path: Path) -> None:
    assert load_ba(tmp_path / "nothing") is None


@pytest.mark.data
def test_real_ba_counts(real_ba: BaTables) -> None:
    tables = real_ba
    occ_report, skill_report, title_report = tables.reports
    assert len(tables.occupation_map) == 8685
    assert occ_report.notes == ["header on line 17", "50 rows map to ISCO groups, not occupations (left out)"]
    assert occ_report.rejected_count == 0
    assert len(tables.skill_map) == 24463
    assert skill_report.notes[0] == "header on line 18"
    assert skill_report.rejected_count == 2
    assert skill_report.reasons == {"broken quoting": 2}
    assert [r.line for r in skill_report.rejected] == [3698, 18332]
    assert "1125 BA competences marked 'no relation' to ESCO (not mapped)" in skill_report.notes
    assert skill_report.rows == 24463 + 2 + 1125
    assert len(tables.titles) == 18838
    assert int(tables.titles.alias.sum()) == 2473
    assert title_report.rejected_count == 0
    assert title_report.notes == [
        "empty row on line 18840 skipped",
        "footer on line 18841 skipped",
        "2473 titles map to exactly one ESCO occupation (aliases); 16000 to several (hints); 365 to none",
    ]
