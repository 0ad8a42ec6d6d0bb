"""Occupation and skill lookup on the real ESCO/BA data (dense index over a fixed sample in CI)."""

from __future__ import annotations

import pytest

from craft.settings import Settings
from tools.lookup import MAX_QUERY_CHARS, InvalidQuery, find_occupations, find_skills, get_occupation

pytestmark = pytest.mark.data

DATA_ANALYST = "http://data.europa.eu/esco/occupation/d3edb8f8-3a06-47a0-8fb9-9b212c006aa2"
SOFTWARE_DEVELOPER = "http://data.europa.eu/esco/occupation/f2b15a0e-e65a-438a-affb-29b9d50b77d1"
BAKER = "http://data.europa.eu/esco/occupation/1aadb308-432a-4d01-b54b-b4f7f76dd419"
NURSE_GENERAL = "http://data.europa.eu/esco/occupation/8d3e8aaa-791b-4c75-a465-f3f827028f50"
SQL = "http://data.europa.eu/esco/skill/598de5b0-5b58-4ea7-8058-a4bc4d18c742"
ACCOUNTING = "http://data.europa.eu/esco/skill/ecc18804-a466-40d9-98b4-fba5cd67dd4b"


def uris(candidates) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.uri for c in candidates]


def test_exact_english_title(real_settings: Settings) -> None:
    found = find_occupations("data analyst", "en")
    assert found[0].uri == DATA_ANALYST and found[0].match == "exact" and found[0].score == 1.0


@pytest.mark.parametrize("text", ["softwre developer", "Software Developers", "software-developer"])
def test_typos_and_plural(real_settings: Settings, text: str) -> None:
    assert SOFTWARE_DEVELOPER in uris(find_occupations(text, "en", k=3))


@pytest.mark.parametrize("text", ["Bäcker", "Bäckerin", "Bäcker/in", "Bäcker (m/w/d)"])
def test_german_gender_forms(real_settings: Settings, text: str) -> None:
    found = find_occupations(text, "de")
    assert found[0].uri == BAKER
    assert found[0].label  # German preferred label


def test_german_label_is_returned_in_german(real_settings: Settings) -> None:
    assert find_occupations("baker", "de")[0].label.startswith("Bäcker")


def test_krankenpfleger_offers_the_nursing_occupations(real_settings: Settings) -> None:
    assert NURSE_GENERAL in uris(find_occupations("Krankenpfleger", "de"))


def test_ba_title_alias_or_hint(real_settings: Settings) -> None:
    found = find_occupations("Fachinformatiker Anwendungsentwicklung", "de", k=10)
    assert SOFTWARE_DEVELOPER in uris(found)


def test_abbreviation_expansion(real_settings: Settings) -> None:
    skills = find_skills("SEO", "en")
    assert skills and "search engine optimisation" in skills[0].label


def test_sentence_with_several_skills(real_settings: Settings) -> None:
    found = find_skills("I know Excel, some SQL and I did bookkeeping", "en")
    spans = {m.uri: m.span for m in found}
    assert SQL in spans and spans[SQL] == "SQL"
    assert any("bookkeeping" in m.span for m in found)


def test_get_occupation_lists_essential_first(real_settings: Settings) -> None:
    occupation = get_occupation(DATA_ANALYST, "en")
    assert occupation is not None and occupation.label == "data analyst"
    assert occupation.essential_skills and all(s.essential for s in occupation.essential_skills)
    assert all(not s.essential for s in occupation.optional_skills)
    assert occupation.ba_codes  # bridged to BERUFENET ids


def test_unknown_uri_is_none(real_settings: Settings) -> None:
    assert get_occupation("http://data.europa.eu/esco/occupation/nope") is None


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_input_gives_empty_result(real_settings: Settings, text: str) -> None:
    assert find_occupations(text) == [] and find_skills(text) == []


@pytest.mark.parametrize("text", ["asdfgh qwerty", "🙂🙂🙂", "!!!???", "<script>alert(1)</script>"])
def test_nonsense_gives_no_confident_match(real_settings: Settings, text: str) -> None:
    assert all(c.score < 0.9 for c in find_occupations(text))


def test_overlong_input_is_a_clear_validation_error(real_settings: Settings) -> None:
    with pytest.raises(InvalidQuery, match=f"under {MAX_QUERY_CHARS:,}"):
        find_occupations("x" * (MAX_QUERY_CHARS + 1))


@pytest.mark.parametrize("value", [None, 42, ["nurse"], b"nurse"])
def test_non_text_is_a_clear_validation_error(real_settings: Settings, value: object) -> None:
    with pytest.raises(InvalidQuery, match="send text"):
        find_occupations(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery):
        find_skills(value)  # type: ignore[arg-type]


def test_pasted_cv(real_settings: Settings) -> None:
    cv = (
        "Work experience\n"
        "2019-2023 Accountant at Müller GmbH\n"
        "- bookkeeping and payroll\n"
        "- Microsoft Excel, SQL\n"
        "Languages: English, German\n"
    )
    found = find_skills(cv, "en")
    assert SQL in uris(found)
    assert len(found) >= 3
