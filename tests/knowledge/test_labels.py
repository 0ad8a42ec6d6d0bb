"""The label table: one row per (concept, language, normalized form), the most authoritative type kept."""

from __future__ import annotations

import pandas as pd
import pytest
from tiny_data import (
    BAKER,
    CLERK,
    NURSE,
    RADIO_ASSISTANT,
    S_CPP,
    S_CSHARP,
    S_OFFICE,
    S_TEAMWORK,
    SOFTWARE_DEV,
    WEB_DEV,
)

from knowledge.ba import BaTables
from knowledge.esco import EscoTables
from knowledge.labels import LABEL_COLUMNS, build_labels, title_hints
from knowledge.text import normalize


@pytest.fixture(scope="module")
def labels(tiny_esco: EscoTables, tiny_ba: BaTables) -> pd.DataFrame:
    return build_labels(tiny_esco, tiny_ba)


def _types(labels: pd.DataFrame, uri: str, lang: str) -> dict[str, str]:
    rows = labels[(labels.uri == uri) & (labels.lang == lang)]
    return dict(zip(rows.label, rows.label_type, strict=True))


def _esco(occupations: list[dict], skills: list[dict] | None = None) -> EscoTables:
    occ_defaults = {
        "pref_en": "",
        "pref_de": "",
        "alt_en": [],
        "alt_de": [],
        "hidden_en": [],
        "hidden_de": [],
    }
    skill_defaults = {"pref_en": "", "pref_de": "", "alt_en": [], "alt_de": [], "hidden_en": []}
    empty = pd.DataFrame()
    return EscoTables(
        occupations=pd.DataFrame([occ_defaults | o for o in occupations]),
        skills=pd.DataFrame([skill_defaults | s for s in skills or []], columns=["uri", *skill_defaults]),
        relations=empty,
        isco_groups=empty,
        skill_broader=empty,
        skill_hierarchy=empty,
    )


def test_columns_ids_and_uniqueness(labels: pd.DataFrame) -> None:
    assert list(labels.columns) == LABEL_COLUMNS
    assert labels.label_id.tolist() == [f"L{i}" for i in range(len(labels))]
    assert not labels.duplicated(["uri", "lang", "norm"]).any()
    assert (labels.norm == labels.label.map(normalize)).all()
    assert (labels.norm != "").all()
    assert set(labels.lang) == {"en", "de"}
    assert set(labels.kind) == {"occupation", "skill"}
    assert len(labels) == 100
    assert labels.label_type.value_counts().to_dict() == {
        "alt": 38,
        "pref": 30,
        "form": 26,
        "ba_label": 3,
        "hidden": 2,
        "ba_title": 1,
    }


def test_pref_alt_hidden_rows(labels: pd.DataFrame) -> None:
    assert _types(labels, NURSE, "en") == {
        "general nurse": "pref",
        "nurse": "alt",
        "registered nurse": "alt",
        "nurse responsible for general care": "alt",
        "RN": "hidden",
    }
    assert _types(labels, S_OFFICE, "en")["MS Office"] == "hidden"
    assert _types(labels, S_TEAMWORK, "de") == {}  # no German label: no German row
    assert _types(labels, S_CPP, "de") == {"C++": "pref"}
    assert _types(labels, S_CPP, "en") == {"C++": "pref", "C++ programming": "alt", "C plus plus": "alt"}
    assert labels[(labels.uri == S_CSHARP)].norm.tolist() == ["c#", "c#", "c sharp"]


def test_german_gender_forms_for_occupations(labels: pd.DataFrame) -> None:
    baker = _types(labels, BAKER, "de")
    assert baker["Bäcker/Bäckerin"] == "pref"
    assert baker["Bäcker"] == "form" and baker["Bäckerin"] == "form"
    assert baker["Brotbäcker"] == "form" and baker["Feinbäckerin"] == "form"  # forms of alt labels too
    # the BA title 'Bäcker/in' normalizes to 'bäcker', which the form already has: the form wins
    assert "Bäcker/in" not in baker
    # forms only for occupations; German-only occupations get them too
    assert not labels[(labels.kind == "skill") & (labels.label_type == "form")].size
    radio = _types(labels, RADIO_ASSISTANT, "de")
    assert radio["Fachassistentin Strahlentherapie"] == "form"
    assert _types(labels, RADIO_ASSISTANT, "en") == {}


def test_ba_titles_and_labels_only_when_unambiguous(labels: pd.DataFrame) -> None:
    nurse = _types(labels, NURSE, "de")
    assert nurse["Stationspfleger/in"] == "ba_title"  # KldB 81302 -> only the nurse
    assert nurse["Krankenschwester"] == "alt"  # also a BA title, but ESCO's alt label is more authoritative
    clerk = _types(labels, CLERK, "de")
    assert clerk["Kaufmann/-frau - Büromanagement"] == "ba_label"  # ba_label outranks the same BA title
    assert clerk["Allgemeine Büro- und Sekretariatskräfte"] == "ba_label"  # ISCO-based id, one ESCO target
    assert (
        _types(labels, RADIO_ASSISTANT, "de")["Medizinisch-technische/r Radiologieassistent/in"] == "ba_label"
    )
    # KldB 43412 and BA id 'B 43412-105' reach two occupations: neither titles nor that label become aliases
    for uri in (SOFTWARE_DEV, WEB_DEV):
        rows = labels[labels.uri == uri]
        assert "ba_title" not in set(rows.label_type)
        assert "Anwendungsentwickler/in" not in set(rows.label)
        assert "Webdesigner/in" not in set(rows.label)


def test_without_ba(tiny_esco: EscoTables) -> None:
    frame = build_labels(tiny_esco, None)
    assert len(frame) == 96
    assert not frame.label_type.isin(["ba_title", "ba_label"]).any()


def test_dedup_keeps_most_authoritative_type() -> None:
    uri = "http://data.europa.eu/esco/occupation/x"
    esco = _esco(
        [
            {
                "uri": uri,
                "pref_en": "Nurse",
                "alt_en": ["nurse", "NURSE!", "Care Worker"],
                "hidden_en": ["care-worker", "nurse"],
                "pref_de": "Pfleger/Pflegerin",
                "alt_de": ["Pfleger", "Pfleger:in"],
                "hidden_de": ["---"],
            }
        ]
    )
    frame = build_labels(esco, None)
    en = frame[frame.lang == "en"]
    assert en[["label", "label_type"]].values.tolist() == [["Nurse", "pref"], ["Care Worker", "alt"]]
    de = frame[frame.lang == "de"]
    # 'Pfleger' as alt beats the 'Pfleger' form of the pref label; 'Pfleger:in' normalizes to the same
    assert de[["label", "label_type"]].values.tolist() == [
        ["Pfleger/Pflegerin", "pref"],
        ["Pfleger", "alt"],
        ["Pflegerin", "form"],
    ]
    assert "---" not in set(frame.label)  # empty after normalization: dropped


def test_same_norm_in_other_language_or_concept_is_kept() -> None:
    a, b = "http://data.europa.eu/esco/occupation/a", "http://data.europa.eu/esco/occupation/b"
    esco = _esco([{"uri": a, "pref_en": "Manager", "pref_de": "Manager"}, {"uri": b, "pref_en": "manager"}])
    frame = build_labels(esco, None)
    assert sorted(zip(frame.uri, frame.lang, strict=True)) == [(a, "de"), (a, "en"), (b, "en")]


def test_ba_label_of_id_with_unknown_uri_is_ignored(tiny_esco: EscoTables) -> None:
    ba = BaTables(
        occupation_map=pd.DataFrame(
            {
                "esco_uri": ["http://data.europa.eu/esco/occupation/unknown"],
                "ba_id": ["B 99999-100"],
                "ba_label": ["Geisterberuf/in"],
            }
        ),
        skill_map=pd.DataFrame(),
        titles=pd.DataFrame(
            {"title": ["Geist"], "esco_uris": [["http://data.europa.eu/esco/occupation/unknown"]]}
        ),
    )
    frame = build_labels(tiny_esco, ba)
    assert len(frame) == 96
    assert "Geisterberuf/in" not in set(frame.label)


def test_title_hints(tiny_ba: BaTables) -> None:
    hints = title_hints(tiny_ba)
    assert list(hints.columns) == ["norm", "title", "esco_uris"]
    assert hints.title.tolist() == ["Softwareentwickler/in", "Webdesigner/in"]
    assert hints.norm.tolist() == ["softwareentwickler", "webdesigner"]
    assert all(uris == sorted([SOFTWARE_DEV, WEB_DEV]) for uris in hints.esco_uris)


def test_title_hints_empty() -> None:
    assert list(title_hints(None).columns) == ["norm", "title", "esco_uris"]
    assert title_hints(None).empty
    ba = BaTables(occupation_map=pd.DataFrame(), skill_map=pd.DataFrame(), titles=pd.DataFrame())
    assert title_hints(ba).empty


@pytest.mark.data
def test_real_label_count(real_esco: EscoTables, real_ba: BaTables) -> None:
    frame = build_labels(real_esco, real_ba)
    assert len(frame) == 173040
    assert frame.label_type.value_counts().to_dict() == {
        "alt": 129995,
        "pref": 33802,
        "form": 3622,
        "ba_label": 2254,
        "ba_title": 2169,
        "hidden": 1198,
    }
    assert frame.lang.value_counts().to_dict() == {"en": 132113, "de": 40927}
    assert not frame.duplicated(["uri", "lang", "norm"]).any()
    assert len(title_hints(real_ba)) == 16000
