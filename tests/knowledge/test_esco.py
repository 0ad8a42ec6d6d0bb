"""ESCO loader on the tiny hand-made download (real headers, own rows) and, data-marked, real v1.1.1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_data import (
    BAKER,
    CLERK,
    ESCO_TINY_DE,
    ESCO_TINY_EN,
    NURSE,
    RADIO_ASSISTANT,
    S_CPP,
    S_MEDICATION,
    S_NURSING,
    S_RADIATION,
    S_TEAMWORK,
    SOFTWARE_DEV,
    UNKNOWN_SKILL,
)

from knowledge.esco import EscoFilesMissing, EscoTables, check_files, load_esco, relations_file

REL_HEADER = "occupationUri,relationType,skillType,skillUri\n"


def _copy_en(tmp_path: Path) -> Path:
    target = tmp_path / "en"
    shutil.copytree(ESCO_TINY_EN, target)
    return target


def _report(tables: EscoTables, source: str):
    return next(r for r in tables.reports if r.source == source)


def test_occupations_merged_by_uri(tiny_esco: EscoTables) -> None:
    occ = tiny_esco.occupations.set_index("uri")
    assert len(occ) == 6
    assert int(occ.in_en.sum()) == 5
    nurse = occ.loc[NURSE]
    assert nurse.pref_en == "general nurse"
    assert nurse.pref_de == "Gesundheits- und Krankenpfleger/Gesundheits- und Krankenpflegerin"
    assert nurse.alt_en == ["nurse", "registered nurse", "nurse responsible for general care"]
    assert nurse.alt_de == ["Krankenpfleger/Krankenpflegerin", "Krankenschwester", "Pflegefachkraft"]
    assert nurse.hidden_en == ["RN"]
    assert nurse.hidden_de == []
    assert (nurse.isco_group, nurse.code) == ("3221", "3221.1")
    assert nurse.desc_en.startswith("General nurses")
    assert nurse.desc_de.startswith("Gesundheits- und Krankenpfleger versorgen")
    # a trailing newline in the multi-line cell leaves no empty label
    assert occ.loc[SOFTWARE_DEV].alt_en == ["programmer", "C++ developer", "software engineer"]


def test_occupation_only_in_german_is_kept(tiny_esco: EscoTables) -> None:
    row = tiny_esco.occupations.set_index("uri").loc[RADIO_ASSISTANT]
    assert not row.in_en
    assert row.pref_en == ""
    assert row.pref_de == "Fachassistent Strahlentherapie/Fachassistentin Strahlentherapie"
    assert row.isco_group == "2269"  # taken from the German row
    note = tiny_esco.reports[0].notes[0]
    assert note.startswith("1 occupation(s) have no English row")
    assert RADIO_ASSISTANT in note and "Fachassistent Strahlentherapie" in note
    # its relations are kept: the occupation is known, even if only in German
    rel = tiny_esco.relations
    assert set(rel[rel.occupation_uri == RADIO_ASSISTANT].skill_uri) == {S_RADIATION, S_MEDICATION}


def test_skills_merged_with_german_labels_file(tiny_esco: EscoTables) -> None:
    skills = tiny_esco.skills.set_index("uri")
    assert len(skills) == 10
    assert skills.in_en.all()
    med = skills.loc[S_MEDICATION]
    assert (med.pref_en, med.pref_de) == ("administer medication", "Medikamente verabreichen")
    assert med.alt_en == ["give medication", "administer medicines"]  # duplicate line dropped
    assert med.alt_de == []  # the derived German file has no alt labels
    assert (med.skill_type, med.reuse_level) == ("skill/competence", "sector-specific")
    assert skills.loc[S_NURSING].desc_de == "Patienten gemäß den Pflegestandards versorgen,\nauch nachts."
    assert skills.loc[S_CPP].pref_de == "C++"
    teamwork = skills.loc[S_TEAMWORK]
    assert teamwork.pref_en == "work in teams"
    assert teamwork.pref_de == "" and teamwork.desc_de == ""
    assert _report(tiny_esco, "esco.skills.de").kept == 9


def test_relations_and_unknown_skill_rejected(tiny_esco: EscoTables) -> None:
    rel = tiny_esco.relations
    assert list(rel.columns) == ["occupation_uri", "skill_uri", "relation", "skill_type"]
    assert len(rel) == 13
    assert UNKNOWN_SKILL not in set(rel.skill_uri)
    assert set(rel.relation) == {"essential", "optional"}
    report = _report(tiny_esco, "esco.relations")
    assert (report.rows, report.kept, report.rejected_count) == (14, 13, 1)
    assert report.reasons == {"unknown skill": 1}
    assert report.rejected[0].line == 11
    assert report.rejected[0].reason == f"unknown skill: {UNKNOWN_SKILL}"
    assert report.rejected[0].file.endswith("occupationSkillRelations.csv")
    nurse = rel[rel.occupation_uri == NURSE].set_index("skill_uri").relation.to_dict()
    assert nurse == {S_TEAMWORK: "optional", S_NURSING: "essential", S_MEDICATION: "essential"}


def test_isco_groups_broader_and_hierarchy(tiny_esco: EscoTables) -> None:
    isco = tiny_esco.isco_groups.set_index("code")
    assert len(isco) == 6
    assert isco.loc["3221"].label_en == "Nursing associate professionals"
    assert isco.loc["3221"].label_de == "Nicht akademische Krankenpflegefachkräfte"
    assert isco.loc["7512"].label_de == ""
    assert len(tiny_esco.skill_broader) == 6
    assert (S_CPP, "http://data.europa.eu/esco/isced-f/0613") in set(
        zip(tiny_esco.skill_broader.uri, tiny_esco.skill_broader.broader_uri, strict=True)
    )
    h = tiny_esco.skill_hierarchy.set_index("uri")
    s = "http://data.europa.eu/esco/skill/"
    assert len(h) == 6  # S, S1, S1.1, S1.1.1, S5, K: repeated ancestors are kept once
    assert h.loc[s + "S"].tolist() == ["skills", "S", 0, ""]
    assert h.loc[s + "S1.1"].tolist() == ["negotiating", "S1.1", 2, s + "S1"]
    assert h.loc[s + "S1.1.1"].tolist() == ["negotiating compromises", "S1.1.1", 3, s + "S1.1"]
    assert h.loc[s + "K"].level == 0
    hierarchy = _report(tiny_esco, "esco.skill_hierarchy")
    assert (hierarchy.kept, hierarchy.rejected_count) == (6, 0)  # short rows are padded, not rejected


def test_reports_cover_every_file(tiny_esco: EscoTables) -> None:
    assert [r.source for r in tiny_esco.reports] == [
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
    assert sum(r.rejected_count for r in tiny_esco.reports) == 1


def test_load_without_german_folder() -> None:
    tables = load_esco(ESCO_TINY_EN)
    assert len(tables.occupations) == 5
    assert tables.occupations.in_en.all()
    assert (tables.occupations.pref_de == "").all()
    assert (tables.skills.pref_de == "").all()
    # the German-only occupation's relations now point at an unknown occupation
    report = _report(tables, "esco.relations")
    assert report.reasons == {"unknown occupation": 2, "unknown skill": 1}
    assert [r.source for r in tables.reports][:3] == [
        "esco.occupations.en",
        "esco.skills.en",
        "esco.relations",
    ]


def test_v12_layout_relations_per_language_and_full_german_skills(tmp_path: Path) -> None:
    en = _copy_en(tmp_path)
    (en / "occupationSkillRelations.csv").rename(en / "occupationSkillRelations_en.csv")
    (en / "broaderRelationsSkillPillar.csv").rename(en / "broaderRelationsSkillPillar_en.csv")
    de = tmp_path / "de"
    de.mkdir()
    shutil.copy(ESCO_TINY_DE / "occupations_de.csv", de)
    header = (ESCO_TINY_EN / "skills_en.csv").read_text(encoding="utf-8").splitlines()[0]
    (de / "skills_de.csv").write_text(
        header + "\nKnowledgeSkillCompetence," + S_CPP + ",knowledge,cross-sector,C++ (DE),"
        '"C++-Programmierung\nC plus plus",,released,,,,,Softwareentwicklung in C++.\n',
        encoding="utf-8",
    )
    shutil.copy(ESCO_TINY_DE / "skills_de_labels_descriptions.csv", de)  # skills_de.csv wins over it
    assert relations_file(en) == en / "occupationSkillRelations_en.csv"
    tables = load_esco(en, de)
    assert len(tables.relations) == 13
    assert len(tables.skill_broader) == 6
    skills = tables.skills.set_index("uri")
    assert skills.loc[S_CPP].pref_de == "C++ (DE)"
    assert skills.loc[S_CPP].alt_de == ["C++-Programmierung", "C plus plus"]
    assert skills.loc[S_MEDICATION].pref_de == ""


def test_concept_rows_rejected_with_lines(tmp_path: Path) -> None:
    en = _copy_en(tmp_path)
    path = en / "occupations_en.csv"
    text = path.read_text(encoding="utf-8")
    text += (
        "Occupation,http://data.europa.eu/esco/occupation/10000000-0000-4000-8000-000000000002,7512,"
        "baker again,,,released,,,,,,,7512.1\n"
        "Occupation,http://example.org/not-esco,1111,stranger,,,released,,,,,,,1111\n"
        "Occupation,too,few,fields\n"
    )
    path.write_text(text, encoding="utf-8")
    tables = load_esco(en)
    report = tables.reports[0]
    assert (report.rows, report.kept, report.rejected_count) == (8, 5, 3)
    assert report.reasons == {"duplicate uri": 1, "bad uri": 1, "field count": 1}
    assert [r.line for r in report.rejected] == [16, 17, 18]
    assert report.rejected[2].reason == "field count: 4 fields, header has 14"
    assert tables.occupations.set_index("uri").loc[BAKER].pref_en == "baker"  # the first row wins


def test_relation_rows_rejected(tmp_path: Path) -> None:
    en = _copy_en(tmp_path)
    (en / "occupationSkillRelations.csv").write_text(
        REL_HEADER
        + f"{CLERK},essential,skill/competence,{S_CPP}\n"
        + f"{CLERK},optional,knowledge,{S_CPP}\n"  # duplicate pair
        + f"{CLERK},related,knowledge,{S_NURSING}\n"
        + f"http://data.europa.eu/esco/occupation/nope,essential,knowledge,{S_NURSING}\n"
        + f"{CLERK},essential\n",
        encoding="utf-8",
    )
    tables = load_esco(en)
    assert tables.relations.values.tolist() == [[CLERK, S_CPP, "essential", "skill/competence"]]
    report = _report(tables, "esco.relations")
    assert report.reasons == {
        "duplicate relation": 1,
        "relation type": 1,
        "unknown occupation": 1,
        "field count": 1,
    }
    assert [r.line for r in report.rejected] == [3, 4, 5, 6]


def test_optional_files_missing_are_noted(tmp_path: Path) -> None:
    en = _copy_en(tmp_path)
    (en / "broaderRelationsSkillPillar.csv").unlink()
    (en / "skillsHierarchy_en.csv").unlink()
    tables = load_esco(en)
    assert tables.skill_broader.empty and list(tables.skill_broader.columns) == ["uri", "broader_uri"]
    assert tables.skill_hierarchy.empty
    assert _report(tables, "esco.skill_broader").notes == ["file missing: skill groups unavailable"]


def test_check_files_passes_on_complete_folder() -> None:
    check_files(ESCO_TINY_EN)


def test_check_files_names_every_missing_file_and_the_download_page(tmp_path: Path) -> None:
    with pytest.raises(EscoFilesMissing) as info:
        check_files(tmp_path)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "occupations_en.csv") in message
    assert str(tmp_path / "skills_en.csv") in message
    assert "occupationSkillRelations.csv (or occupationSkillRelations_en.csv)" in message
    assert "https://esco.ec.europa.eu/en/use-esco/download" in message
    assert "craft data fetch esco" in message


def test_check_files_only_relations_missing(tmp_path: Path) -> None:
    en = _copy_en(tmp_path)
    (en / "occupationSkillRelations.csv").unlink()
    with pytest.raises(EscoFilesMissing) as info:
        load_esco(en)
    message = str(info.value)
    assert "occupationSkillRelations.csv" in message
    assert "occupations_en.csv" not in message and "skills_en.csv" not in message


@pytest.mark.data
def test_real_esco_counts(real_esco: EscoTables) -> None:
    tables = real_esco
    occ = tables.occupations
    assert len(occ) == 3008
    assert int(occ.in_en.sum()) == 3007
    missing = occ[~occ.in_en]
    assert missing.uri.tolist() == [
        "http://data.europa.eu/esco/occupation/a9e54177-a185-404d-b6e6-15663d31137e"
    ]
    assert missing.pref_de.iloc[0] == "Fachassistent Strahlentherapie/Fachassistentin Strahlentherapie"
    assert len(tables.skills) == 13896
    assert len(tables.relations) == 123855
    assert _report(tables, "esco.relations").rejected_count == 0
    assert sum(r.rejected_count for r in tables.reports) == 0
    assert (len(tables.isco_groups), len(tables.skill_broader), len(tables.skill_hierarchy)) == (
        619,
        20656,
        647,
    )
    assert _report(tables, "esco.skills.de").kept == 13891
