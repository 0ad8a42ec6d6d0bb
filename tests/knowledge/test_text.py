"""text.normalize (shared by index and query) and gender_forms (ESCO's German Maskulinum/Femininum labels)."""

from __future__ import annotations

import pytest

from knowledge.text import gender_forms, normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Pfleger/in", "pfleger"),
        ("Pfleger/-in", "pfleger"),
        ("Pfleger:in", "pfleger"),
        ("Pfleger*in", "pfleger"),
        ("Pfleger_in", "pfleger"),
        ("Pfleger(in)", "pfleger"),
        ("Lehrer/innen", "lehrer"),
        ("Lehrer:innen", "lehrer"),
        ("Lehrer*innen", "lehrer"),
        ("Lehrer(innen)", "lehrer"),
        ("Softwareentwickler (m/w/d)", "softwareentwickler"),
        ("Softwareentwickler (M/W/D)", "softwareentwickler"),
        ("Koch (m / w / d)", "koch"),
        ("Koch (w/m/x)", "koch"),
        ("Koch (m/w/gn)", "koch"),
        ("Kaufmann/-frau für Büromanagement", "kaufmann für büromanagement"),
        ("Kaufmann/frau", "kaufmann"),
        ("Kauffrau/-mann", "kauffrau"),
        ("Gesundheits- und Krankenpfleger/in", "gesundheits und krankenpfleger"),
        ("Bäcker/in (m/w/d)", "bäcker"),
    ],
)
def test_normalize_removes_german_gender_suffixes(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C++", "c++"),
        ("C#", "c#"),
        ("C++ / C# developer", "c++ c# developer"),
        ("F# programming", "f# programming"),
        ("Python (computer programming)", "python computer programming"),
        ("  Software--Engineer!!  ", "software engineer"),
        ("snake_case_name", "snake case name"),
        ("Über Größe", "über größe"),
        ("ﬁnance", "finance"),  # NFKC folds the ligature
        ("Ｃ＋＋", "c++"),  # full-width forms fold too
        ("", ""),
        ("---", ""),
    ],
)
def test_normalize_punctuation_case_unicode(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_leaves_words_that_merely_contain_in_alone() -> None:
    assert normalize("Input/Output") == "input output"
    assert normalize("Login Manager") == "login manager"
    assert normalize("Berlin/Brandenburg") == "berlin brandenburg"
    assert normalize("Marketing:Innovation") == "marketing innovation"


def test_normalize_removes_adjective_gender_ending() -> None:
    assert normalize("Abgeordnete/r") == "abgeordnete"


def test_normalize_is_idempotent() -> None:
    for text in ("Kaufmann/-frau", "C++ (m/w/d)", "Pfleger:innen in Berlin", "Data_Scientist"):
        once = normalize(text)
        assert normalize(once) == once


@pytest.mark.parametrize(
    ("label", "forms"),
    [
        ("Bäcker/Bäckerin", ["Bäcker", "Bäckerin"]),
        (
            "Fachassistent Strahlentherapie/Fachassistentin Strahlentherapie",
            ["Fachassistent Strahlentherapie", "Fachassistentin Strahlentherapie"],
        ),
        ("Bürokaufmann / Bürokauffrau", ["Bürokaufmann", "Bürokauffrau"]),
        ("Krankenschwester", []),  # no slash
        ("CAD/CAM", []),  # too short to be a gender pair
        ("Ab-/Zugang", []),  # too short on one side
        ("Pfleger/in", []),
        ("Lehrer/Lehrerin/Lehrkraft", []),  # three parts
        ("Bäcker/bäckerin", []),  # second part not capitalized
        ("input/output", []),
    ],
)
def test_gender_forms(label: str, forms: list[str]) -> None:
    assert gender_forms(label) == forms
