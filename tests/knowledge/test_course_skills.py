"""Course skill enrichment: phrase matching, source skills, evidence merge, incremental cache, real data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from craft.settings import Settings
from knowledge.course_skills import (
    CourseText,
    PhraseExtractor,
    SkillEvidence,
    SkillExtractor,
    SourceExtractor,
    enrich_courses,
    load_course_skills,
    merge_evidence,
    read_course_skills,
    split_phrases,
)
from knowledge.text import normalize

S = "http://data.europa.eu/esco/skill/"
JAVA, JS, PM, MGMT, ML, SPARK, DID, BAKE, OLD = (
    S + x for x in ["java", "js", "pm", "mgmt", "ml", "spark", "did", "bake", "old"]
)
PYTHON_REAL = S + "ccd0a1d9-afda-43d9-b901-96344886e14d"

LABELS = [
    (JAVA, "en", "Java", "alt"),
    (JAVA, "en", "Java (computer programming)", "pref"),
    (JS, "en", "JavaScript", "pref"),
    (PM, "en", "project management", "pref"),
    (PM, "de", "Projektmanagement", "pref"),
    (PM, "en", "managing projects", "hidden"),
    (MGMT, "en", "management", "pref"),
    (MGMT, "en", "guide", "alt"),  # one-word lower-case alt: an ordinary word, dropped
    (ML, "en", "machine learning", "pref"),
    (ML, "en", "ML", "alt"),  # under 3 characters: dropped
    (SPARK, "en", "SPARK", "pref"),  # acronym: only matches SPARK
    (DID, "en", "DID", "alt"),
    (BAKE, "en", "bake goods", "pref"),
    (BAKE, "de", "Backwaren backen", "pref"),
]


def label_table() -> pd.DataFrame:
    frame = pd.DataFrame(LABELS, columns=["uri", "lang", "label", "label_type"])
    frame["kind"] = "skill"
    frame["norm"] = frame.label.map(normalize)
    frame.insert(0, "label_id", [f"L{i}" for i in range(len(frame))])
    return frame


def course_table(rows: list[dict]) -> pd.DataFrame:
    base = {"description": None, "language": "en", "raw_skills": [], "esco_skills": []}
    frame = pd.DataFrame([{**base, **r} for r in rows])
    frame["has_description"] = frame.description.map(lambda d: isinstance(d, str) and bool(d.strip()))
    return frame


@pytest.fixture(scope="module")
def phrase() -> PhraseExtractor:
    return PhraseExtractor(label_table(), stoplist=["management"])


def by_uri(evidence: list[SkillEvidence]) -> dict[str, SkillEvidence]:
    return {e.skill_uri: e for e in evidence}


def test_word_boundaries_java_not_in_javascript(phrase: PhraseExtractor) -> None:
    found = by_uri(phrase.extract("c1", "Web basics", "We teach JavaScript and some Javanese.", "en"))
    assert set(found) == {JS}
    assert found[JS].span == "JavaScript"
    found = by_uri(phrase.extract("c1", "Web basics", "Java, then JavaScript.", "en"))
    assert set(found) == {JAVA, JS}


def test_longest_match_wins_and_offsets_point_into_the_original(phrase: PhraseExtractor) -> None:
    text = "Learn agile  Project-Management (with ML) today."
    found = by_uri(phrase.extract("c1", "Agile", text, "en"))
    assert set(found) == {PM}  # not MGMT inside "project management"; "ML" is too short
    ev = found[PM]
    assert (ev.field, ev.span) == ("text", "Project-Management")
    assert text[ev.start : ev.end] == ev.span


def test_matches_do_not_cross_punctuation(phrase: PhraseExtractor) -> None:
    assert phrase.extract("c1", "x", "Each project, management and planning.", "en") == []


def test_title_boost_and_label_type_confidence(phrase: PhraseExtractor) -> None:
    in_title = by_uri(phrase.extract("c1", "Project Management 101", "", "en"))[PM]
    in_text = by_uri(phrase.extract("c2", "Course", "All about project management.", "en"))[PM]
    hidden = by_uri(phrase.extract("c3", "Course", "All about managing projects.", "en"))[PM]
    assert in_title.field == "title" and in_title.start == 0
    assert in_title.confidence > in_text.confidence > hidden.confidence


def test_german_label_in_a_german_course(phrase: PhraseExtractor) -> None:
    found = by_uri(phrase.extract("c1", "Kurs", "Grundlagen: Projektmanagement und Backwaren backen.", "de"))
    assert set(found) == {PM, BAKE}
    assert found[BAKE].span == "Backwaren backen"
    english = by_uri(phrase.extract("c2", "Kurs", "We bake goods.", "de"))[BAKE]
    assert english.confidence < found[BAKE].confidence  # label only in another language than the course


def test_generic_one_word_labels(phrase: PhraseExtractor) -> None:
    # stoplisted words count in titles only; lower-case one-word alt labels never; acronyms need capitals
    assert MGMT not in by_uri(phrase.extract("c1", "Intro", "Management of teams, a guide.", "en"))
    assert MGMT in by_uri(phrase.extract("c1", "Management basics", "", "en"))
    found = by_uri(phrase.extract("c1", "x", "Did you know Spark? We use SPARK and DID.", "en"))
    assert set(found) == {SPARK, DID}
    assert found[SPARK].span == "SPARK"


def test_source_extractor_links_raw_skills_and_keeps_known_uris() -> None:
    courses = course_table(
        [
            {
                "id": "c1",
                "title": "A",
                "raw_skills": ["Java", "Underwater basket weaving"],
                "esco_skills": [PM, OLD],
            },
            {"id": "c2", "title": "B"},
        ]
    )
    source = SourceExtractor(label_table(), courses, {PM: "project management"})
    found = by_uri(source.extract("c1", "A", "", "en"))
    assert set(found) == {JAVA, PM}  # the unknown URI (other ESCO version) is dropped
    assert found[PM].confidence == 0.9 and found[PM].span == "project management" and found[PM].start is None
    assert found[JAVA].confidence == 0.8 and found[JAVA].span == "Java" and found[JAVA].method == "source"
    assert source.extract("c2", "B", "", "en") == []


def test_merge_keeps_best_evidence_and_lists_methods() -> None:
    evidence = [
        ("c1", SkillEvidence(skill_uri=PM, confidence=0.8, method="phrase", span="pm", start=0, end=2)),
        ("c1", SkillEvidence(skill_uri=PM, confidence=0.9, method="source", span="project management")),
        ("c1", SkillEvidence(skill_uri=JS, confidence=0.6, method="embedding", span="web", start=3, end=6)),
        ("c2", SkillEvidence(skill_uri=PM, confidence=0.5, method="phrase", span="x", start=1, end=2)),
    ]
    table = merge_evidence(evidence)
    assert len(table) == 3
    row = table[(table.course_id == "c1") & (table.skill_uri == PM)].iloc[0]
    assert row.confidence == 0.9 and row.method == "source" and row.span == "project management"
    assert list(row.methods) == ["phrase", "source"] and pd.isna(row.start)


def test_split_phrases_offsets() -> None:
    text = "Learn SQL databases today. Build apps!\n- Deploy them to the cloud"
    phrases = split_phrases(text, max_words=3)
    assert [p for p, _, _ in phrases] == ["Learn SQL databases", "Build apps", "Deploy them to", "the cloud"]
    assert all(text[s:e].strip(" -") == p for p, s, e in phrases)


class CountingExtractor(SkillExtractor):
    name = "counting"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def extract(self, course_id: str, title: str, text: str, lang: str) -> list[SkillEvidence]:
        self.calls.append(course_id)
        return [
            SkillEvidence(skill_uri=JS, confidence=0.4 if "weak" in text else 0.7, method="ner", span=title)
        ]


def test_enrichment_is_incremental(tmp_path: Path, phrase: PhraseExtractor) -> None:
    settings = Settings(store_dir=tmp_path / "store")
    rows = [
        {"id": "c1", "title": "Project Management", "description": "Plan projects."},
        {"id": "c2", "title": "Java", "description": "Learn Java."},
        {"id": "c3", "title": "Title only"},  # no description, no source skills: skipped
        {"id": "c4", "title": "Listed", "raw_skills": ["JavaScript"]},  # no description but source skills
    ]
    kb = SimpleNamespace(courses=course_table(rows), manifest=None)
    counting = CountingExtractor()
    source = SourceExtractor(label_table(), kb.courses)
    table = enrich_courses(settings, kb, [phrase, source, counting], progress=False)
    assert sorted(counting.calls) == ["c1", "c2", "c4"]
    assert table.attrs["stats"] == {"courses": 3, "extracted": 9, "reused": 0}
    assert set(table[table.course_id == "c4"].skill_uri) == {JS}
    js_c4 = table[(table.course_id == "c4") & (table.skill_uri == JS)].iloc[0]
    assert list(js_c4.methods) == ["ner", "source"]

    counting.calls.clear()
    again = enrich_courses(settings, kb, [phrase, source, counting], progress=False)
    assert counting.calls == []
    assert again.attrs["stats"]["extracted"] == 0
    pd.testing.assert_frame_equal(again.reset_index(drop=True), table.reset_index(drop=True))

    changed = course_table([*rows[:1], {**rows[1], "description": "Learn Java, weak."}, *rows[2:]])
    kb2 = SimpleNamespace(courses=changed, manifest=None)
    table = enrich_courses(settings, kb2, [phrase, counting], progress=False)
    assert counting.calls == ["c2"]
    assert table.attrs["stats"] == {"courses": 3, "extracted": 2, "reused": 4}  # phrase + counting for c2
    assert set(read_course_skills(settings).method) <= {"phrase", "ner"}

    skills = load_course_skills(settings, min_confidence=0.5)
    assert skills["c1"] == {PM, JS} and skills["c2"] == {JAVA}  # c2's ner evidence is now weak (0.4)


def test_course_text_is_what_extractors_see() -> None:
    assert CourseText("c", "t", "x", "en").lang == "en"


@pytest.mark.data
def test_real_catalog_phrase_and_source(real_settings: Settings, tmp_path: Path) -> None:
    from knowledge.store import get_knowledge

    kb = get_knowledge(real_settings)
    courses = kb.courses[kb.courses.has_description]
    python = courses[courses.title.str.contains(r"\bPython\b", regex=True)].head(10)
    sourced = courses[courses.esco_skills.map(len) > 0].head(10)
    others = courses.drop(python.index.union(sourced.index)).sample(30, random_state=1)
    sample = pd.concat([python, sourced, others])
    stub = SimpleNamespace(courses=sample, manifest=kb.manifest)
    settings = real_settings.model_copy(update={"store_dir": tmp_path / "store"})
    extractors = [PhraseExtractor.from_kb(kb), SourceExtractor.from_kb(kb)]
    table = enrich_courses(settings, stub, extractors, progress=False)

    assert set(table.course_id) <= set(sample.id)
    assert set(table.skill_uri) <= set(kb.skills)
    assert table.confidence.between(0, 1).all()
    python_hits = table[table.course_id.isin(python.id) & (table.skill_uri == PYTHON_REAL)]
    assert python_hits.course_id.nunique() >= 0.8 * len(python)
    assert (table[table.course_id.isin(sourced.id)].method == "source").any()
    phrase_rows = table[table.method == "phrase"].merge(sample, left_on="course_id", right_on="id")
    for row in phrase_rows.itertuples():
        source_text = row.title if row.field == "title" else row.description
        assert source_text[row.start : row.end] == row.span
