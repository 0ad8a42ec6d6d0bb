"""KnowledgeBase on the tiny snapshot: URI dictionaries, label fallback, essential skills first, BA codes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from tiny_data import (
    BAKER,
    CLERK,
    NURSE,
    RADIO_ASSISTANT,
    S_CPP,
    S_MEDICATION,
    S_NURSING,
    S_PYTHON,
    S_RADIATION,
    S_TEAMWORK,
    SOFTWARE_DEV,
    WEB_DEV,
    make_tiny_data_dir,
)

from craft.settings import Settings
from knowledge.snapshot import build_snapshot, current_path
from knowledge.store import Concept, KnowledgeBase, SnapshotMissing, get_knowledge


@pytest.fixture(scope="module")
def kb_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_tiny_data_dir(tmp_path_factory.mktemp("store"))
    build_snapshot(settings, console=Console(file=io.StringIO()))
    return settings


@pytest.fixture(scope="module")
def kb(kb_settings: Settings) -> KnowledgeBase:
    return get_knowledge(kb_settings)


def test_get_knowledge_is_cached_per_snapshot(kb_settings: Settings, kb: KnowledgeBase) -> None:
    assert get_knowledge(kb_settings) is kb
    assert kb.path == current_path(kb_settings)
    assert kb.manifest.row_counts["occupations"] == 6


def test_snapshot_missing_message(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", store_dir=tmp_path / "store")
    with pytest.raises(SnapshotMissing) as info:
        get_knowledge(settings)
    message = str(info.value)
    assert str(tmp_path / "store") in message
    assert "craft data build" in message
    assert str(tmp_path / "data") in message


def test_occupations_dict(kb: KnowledgeBase) -> None:
    occ = kb.occupations
    assert set(occ) == {NURSE, BAKER, SOFTWARE_DEV, CLERK, WEB_DEV, RADIO_ASSISTANT}
    nurse = occ[NURSE]
    assert isinstance(nurse, Concept)
    assert (nurse.kind, nurse.pref_en, nurse.isco_group) == ("occupation", "general nurse", "3221")
    assert nurse.label("de") == "Gesundheits- und Krankenpfleger/Gesundheits- und Krankenpflegerin"
    assert nurse.description("en").startswith("General nurses")
    assert nurse.description("de").startswith("Gesundheits- und Krankenpfleger versorgen")
    assert kb.occupations is occ  # computed once


def test_label_falls_back_to_the_other_language(kb: KnowledgeBase) -> None:
    radio = kb.occupations[RADIO_ASSISTANT]  # German row only
    assert radio.pref_en == ""
    assert radio.label("en") == "Fachassistent Strahlentherapie/Fachassistentin Strahlentherapie"
    assert radio.label("de") == radio.label("en")
    teamwork = kb.skills[S_TEAMWORK]  # no German label
    assert teamwork.label("de") == "work in teams"
    assert teamwork.description("de") == "Work confidently within a group, each doing their part."
    clerk = kb.occupations[CLERK]  # no description in either language
    assert clerk.description("en") == clerk.description("de") == ""


def test_concept_label_defaults_to_english() -> None:
    concept = Concept("u", "skill", "cook", "kochen", "", "Speisen zubereiten")
    assert concept.label() == "cook"
    assert concept.label("fr") == "cook"
    assert concept.description() == "Speisen zubereiten"
    assert Concept("u", "skill", "", "", "", "").label("de") == ""


def test_skills_dict(kb: KnowledgeBase) -> None:
    assert len(kb.skills) == 10
    cpp = kb.skills[S_CPP]
    assert (cpp.kind, cpp.skill_type, cpp.label("de")) == ("skill", "knowledge", "C++")


def test_occupation_skills_essential_first(kb: KnowledgeBase) -> None:
    skills = kb.occupation_skills
    essential = sorted([(S_MEDICATION, "essential"), (S_NURSING, "essential")])
    assert skills[NURSE] == [*essential, (S_TEAMWORK, "optional")]
    assert skills[RADIO_ASSISTANT] == [(S_RADIATION, "essential"), (S_MEDICATION, "optional")]
    assert skills[WEB_DEV] == [(S_PYTHON, "essential")]
    for pairs in skills.values():
        relations = [relation for _, relation in pairs]
        assert relations == sorted(relations)  # 'essential' < 'optional'
    assert sum(len(v) for v in skills.values()) == 13


def test_ba_codes(kb: KnowledgeBase) -> None:
    codes = kb.ba_codes
    assert codes[NURSE] == [("B 81302-101", "Gesundheits- und Krankenpfleger/in", "exactMatch")]
    assert sorted(code for code, _, _ in codes[SOFTWARE_DEV]) == ["B 43412-103", "B 43412-105"]
    assert {code for code, _, _ in codes[CLERK]} == {"B 71402-102", "BE 4110"}
    assert RADIO_ASSISTANT in codes


def test_tables_round_trip(kb: KnowledgeBase) -> None:
    assert len(kb.labels) == 100
    assert kb.title_hints.title.tolist() == ["Softwareentwickler/in", "Webdesigner/in"]
    assert list(kb.title_hints.esco_uris.iloc[0]) == sorted([SOFTWARE_DEV, WEB_DEV])
    assert len(kb.courses) == kb.manifest.row_counts["courses"]
    assert list(kb.table("occupations").alt_en[kb.table("occupations").uri == BAKER].iloc[0]) == [
        "bread baker",
        "pastry baker",
    ]


def test_new_snapshot_gives_new_knowledge_base(tmp_path: Path) -> None:
    settings = make_tiny_data_dir(tmp_path)
    build_snapshot(settings, console=Console(file=io.StringIO()))
    first = get_knowledge(settings)
    (settings.esco_path / "skills_en.csv").write_text(
        (settings.esco_path / "skills_en.csv")
        .read_text(encoding="utf-8")
        .replace("food hygiene", "food safety"),
        encoding="utf-8",
    )
    build_snapshot(settings, console=Console(file=io.StringIO()))
    second = get_knowledge(settings)
    assert second is not first
    assert "food safety" in {c.pref_en for c in second.skills.values()}
    assert "food hygiene" in {c.pref_en for c in first.skills.values()}
