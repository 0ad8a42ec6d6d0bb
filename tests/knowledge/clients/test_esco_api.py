"""ESCO web API client and the writer for the official CSV layout."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import httpx
import pytest

from knowledge.clients.esco_api import (
    OCCUPATION_COLUMNS,
    RELATION_COLUMNS,
    SKILL_COLUMNS,
    EscoClient,
    file_names,
    is_occupation,
    is_skill,
    occupation_row,
    relation_rows,
    skill_row,
    write_esco_csv,
)


def search_handler(fixture_json, total: int):
    def handle(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if request.url.path.endswith("/resource/occupation"):
            return httpx.Response(200, json=fixture_json("esco_occupation.json"))
        page, limit = int(params["offset"]), int(params["limit"])
        start = page * limit
        results = []
        for index in range(start, min(start + limit, total)):
            record = fixture_json("esco_occupation.json")
            record["uri"] = record["uri"][:-3] + f"{index:03d}"
            results.append(record)
        return httpx.Response(200, json={"total": total, "offset": page, "limit": limit,
                                         "_embedded": {"results": results}, "_links": {}})  # fmt: skip

    return handle


def test_search_sends_version_and_paging(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(search_handler(fixture_json, total=5))
    client = EscoClient(make_settings(), version="1.2.0", **client_kwargs(rec))
    pages = list(client.iter_pages("occupation", language="de", limit=2))
    assert [n for n, _ in pages] == [0, 1, 2]
    assert sum(len(p.results) for _, p in pages) == 5 and pages[0][1].total == 5
    params = rec.requests[0].url.params
    assert rec.requests[0].url.path == "/esco/api/search"
    assert params["type"] == "occupation" and params["language"] == "de" and params["full"] == "true"
    assert params["selectedVersion"] == "v1.2.0" and params["limit"] == "2"
    assert [r.url.params["offset"] for r in rec.requests] == ["0", "1", "2"]
    assert "X-API-Key" not in rec.requests[0].headers


def test_resource_lookup(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(search_handler(fixture_json, total=0))
    client = EscoClient(make_settings(), version=None, **client_kwargs(rec))
    uri = "http://data.europa.eu/esco/occupation/00000000-0000-4000-8000-000000000001"
    assert client.occupation(uri, language="de")["code"] == "2512.4"
    assert rec.requests[0].url.params["uri"] == uri and "selectedVersion" not in rec.requests[0].url.params


def test_occupation_row_matches_official_columns(fixture_json):
    row = occupation_row(fixture_json("esco_occupation.json"), "en")
    assert list(row) == OCCUPATION_COLUMNS
    assert row["conceptType"] == "Occupation"
    assert row["iscoGroup"] == "2512" and row["code"] == "2512.4"
    assert row["altLabels"] == "programmer\nsoftware engineer"
    assert row["hiddenLabels"] == "coder"
    assert row["inScheme"].split(",\n") == [
        "http://data.europa.eu/esco/concept-scheme/occupations",
        "http://data.europa.eu/esco/concept-scheme/member-occupations",
    ]
    assert row["regulatedProfessionNote"].endswith("/unregulated")
    assert row["description"].startswith("Software developers")
    german = occupation_row(fixture_json("esco_occupation.json"), "de")
    assert german["preferredLabel"] == "Softwareentwickler/Softwareentwicklerin"
    assert german["altLabels"] == "Programmierer" and german["description"] == ""


def test_skill_row_and_relations(fixture_json):
    skill = skill_row(fixture_json("esco_skill.json"), "en")
    assert list(skill) == SKILL_COLUMNS
    assert skill["skillType"] == "skill/competence" and skill["reuseLevel"] == "sector-specific"
    assert skill["conceptType"] == "KnowledgeSkillCompetence"
    relations = relation_rows(fixture_json("esco_occupation.json"))
    assert [(r["relationType"], r["skillType"]) for r in relations] == [
        ("essential", "knowledge"),
        ("essential", "skill/competence"),
        ("optional", ""),
    ]


def test_concept_filters():
    assert is_skill({"uri": "http://data.europa.eu/esco/skill/00000000-0000-4000-8000-00000000000b"})
    assert not is_skill({"uri": "http://data.europa.eu/esco/skill/S1.2.3"})
    assert not is_occupation({"uri": "http://data.europa.eu/esco/isco/C2512"})


def test_file_names_follow_the_release():
    assert file_names("1.1.1", "en")["relations"] == "occupationSkillRelations.csv"
    assert file_names("v1.2.0", "de") == {
        "occupations": "occupations_de.csv",
        "skills": "skills_de.csv",
        "relations": "occupationSkillRelations_de.csv",
    }


def test_written_csv_reads_back_with_multiline_labels(tmp_path, fixture_json):
    occupation = fixture_json("esco_occupation.json")
    skill = fixture_json("esco_skill.json")
    written = write_esco_csv(
        tmp_path,
        version="1.2.0",
        lang="en",
        occupations=[occupation_row(occupation, "en"), occupation_row(occupation, "en")],
        skills=[skill_row(skill, "en")],
        relations=relation_rows(occupation),
    )
    assert {k: n for k, (_, n) in written.items()} == {"occupations": 1, "skills": 1, "relations": 3}
    with (tmp_path / "occupations_en.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == OCCUPATION_COLUMNS
    assert rows[0]["altLabels"].split("\n") == ["programmer", "software engineer"]
    assert rows[0]["scopeNote"] == 'Includes people writing code, "in teams".'
    with (tmp_path / "occupationSkillRelations_en.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        relations = list(reader)
    assert reader.fieldnames == RELATION_COLUMNS
    # the optional link carried no skillType; the skills table does not know that skill either
    assert [r["skillType"] for r in relations] == ["knowledge", "skill/competence", ""]
    assert (tmp_path / "skills_en.csv").read_bytes().count(b"\r\n") >= 2


@pytest.mark.data
def test_columns_equal_the_official_download_headers():
    data_dir = os.environ.get("CRAFT_DATA_DIR")
    folder = Path(data_dir or ".") / "esco" / "v1.1.1_en"
    if not data_dir or not folder.exists():
        pytest.skip("needs CRAFT_DATA_DIR with esco/v1.1.1_en")
    for name, columns in (
        ("occupations_en.csv", OCCUPATION_COLUMNS),
        ("skills_en.csv", SKILL_COLUMNS),
        ("occupationSkillRelations.csv", RELATION_COLUMNS),
    ):
        with (folder / name).open(encoding="utf-8", newline="") as handle:
            assert next(csv.reader(handle)) == columns, name
