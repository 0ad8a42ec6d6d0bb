"""The NER extractor: shared text handling (words, segments, BIO) and the linking of spans to ESCO skills;
a fixed tagger stands in for the model (the trained one is tested in tests/training/test_train_ner.py)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

from knowledge.ner_extractor import (
    NerExtractor,
    PredictedSpan,
    segment,
    spans_to_tags,
    tags_to_spans,
    word_spans,
)
from knowledge.text import normalize

S = "http://data.europa.eu/esco/skill/"
PM, PM_OTHER, PY, BAKE = S + "pm", S + "pm-other", S + "python", S + "bake"


def labels() -> pd.DataFrame:
    rows = [
        (PM, "en", "project management", "pref"),
        (PM_OTHER, "en", "project management", "hidden"),  # same label, worse type: not linked
        (PY, "en", "Python (computer programming)", "pref"),
        (PY, "en", "Python", "alt"),
        (BAKE, "de", "Backwaren backen", "pref"),
        (S + "occupation-like", "en", "baker", "pref"),
    ]
    frame = pd.DataFrame(rows, columns=["uri", "lang", "label", "label_type"])
    frame["kind"] = ["skill"] * 5 + ["occupation"]
    frame["norm"] = frame.label.map(normalize)
    return frame


class FixedTagger:
    """Stands in for ``NerTagger``: finds the given surface strings with a fixed probability."""

    max_words = 48

    def __init__(self, mentions: Sequence[str], score: float = 0.9) -> None:
        self.mentions, self.score = mentions, score
        self.calls = 0

    def spans(self, texts: Sequence[str]) -> list[list[PredictedSpan]]:
        self.calls += 1
        out = []
        for text in texts:
            found = []
            for mention in self.mentions:
                start = text.find(mention)
                if start >= 0:
                    found.append(PredictedSpan(start, start + len(mention), mention, self.score))
            out.append(found)
        return out


def test_words_keep_cpp_and_split_punctuation() -> None:
    text = "Learn C++, C# and Python."
    assert [text[s:e] for s, e in word_spans(text)] == ["Learn", "C++", ",", "C#", "and", "Python", "."]


def test_segments_follow_sentences_and_never_cut_a_protected_span() -> None:
    text = "Intro line\nWe teach project management basics. Then more! • bullet item here"
    words = word_spans(text)
    parts = [" ".join(text[s:e] for s, e in words[a:b]) for a, b in segment(text, words, max_words=10)]
    assert parts == [
        "Intro line",
        "We teach project management basics .",
        "Then more !",
        "• bullet item here",
    ]
    long = " ".join(f"w{i}" for i in range(10))
    words = word_spans(long)
    assert segment(long, words, max_words=4) == [(0, 4), (4, 8), (8, 10)]
    # words 3..5 form a span: the window ends before it instead of cutting it
    assert segment(long, words, max_words=4, protect=[(3, 6)]) == [(0, 3), (3, 7), (7, 10)]
    with pytest.raises(ValueError, match="max_words"):
        segment(long, words, max_words=0)


def test_bio_round_trip_and_partial_selections_snap_to_words() -> None:
    text = "Learn project management with Python"
    words = word_spans(text)
    tags = spans_to_tags(words, [(6, 24), (32, 36)])  # "project management", "thon" of Python
    assert tags == ["O", "B-SKILL", "I-SKILL", "O", "B-SKILL"]
    assert tags_to_spans(tags) == [(1, 3), (4, 5)]
    assert tags_to_spans(["I-SKILL", "I-SKILL", "O", "B-SKILL", "B-SKILL"]) == [(0, 2), (3, 4), (4, 5)]


def test_spans_link_exactly_then_fuzzily_and_only_to_skills() -> None:
    extractor = NerExtractor(FixedTagger([]), labels(), model_name="ner-test")  # type: ignore[arg-type]
    assert extractor.link("Project Management") == [(PM, 0.9)]  # the hidden-label namesake is not linked
    assert extractor.link("Python") == [(PY, 0.85)]
    fuzzy = extractor.link("projekt management")
    assert [u for u, _ in fuzzy] == [PM] and 0.6 < fuzzy[0][1] < 0.7
    assert extractor.link("baker") == []  # an occupation label
    assert extractor.link("Pyth") == []  # short spans link only exactly
    assert extractor.link("underwater basket weaving") == []


def test_extract_returns_offsets_and_known_skill_uris_only() -> None:
    tagger = FixedTagger(["project management", "Python", "Backwaren backen", "knitting"], score=0.8)
    extractor = NerExtractor(tagger, labels(), model_name="ner-test")  # type: ignore[arg-type]
    title, text = "Python for managers", "Covers project management. Auch: Backwaren backen; knitting."
    evidence = {e.skill_uri: e for e in extractor.extract("c1", title, text, "en")}
    assert set(evidence) == {PM, PY, BAKE}
    assert set(evidence) <= set(labels().query("kind == 'skill'").uri)
    pm = evidence[PM]
    assert (pm.method, pm.field, text[pm.start : pm.end]) == ("ner", "text", "project management")
    assert pm.confidence == pytest.approx(0.72)
    assert (evidence[PY].field, evidence[PY].start) == ("title", 0)


def test_prefetch_tags_in_batches_and_version_names_the_model() -> None:
    tagger = FixedTagger(["Python"])
    extractor = NerExtractor(tagger, labels(), model_name="ner-aaa")  # type: ignore[arg-type]
    from knowledge.course_skills import CourseText

    courses = [CourseText(f"c{i}", "Python", f"text {i}", "en") for i in range(3)]
    extractor.prefetch(courses)
    assert tagger.calls == 1
    assert all(extractor.extract(c.course_id, c.title, c.text, c.lang) for c in courses)
    assert tagger.calls == 1
    other = NerExtractor(tagger, labels(), model_name="ner-bbb")  # type: ignore[arg-type]
    assert extractor.version.startswith("ner1:") and extractor.version != other.version
