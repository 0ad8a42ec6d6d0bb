"""The MLM corpus builder on small fixtures: cleaning, passage splitting, exact and near de-duplication,
the held-out split by document group, and the counting (not dropping) of rows without usable text."""

from __future__ import annotations

import math

import pytest

from training.corpus import (
    CorpusOptions,
    NearDuplicates,
    RawText,
    build_passages,
    clean_text,
    fold,
    heldout_groups,
    split_units,
)

LONG = (
    "This course teaches the fundamentals of project management for small teams. You plan a project, "
    "estimate tasks and risks, and track progress with simple tools. Case studies from construction and "
    "software show what goes wrong and how experienced managers react. At the end you present a complete "
    "plan for a project of your own choice to the other participants."
)


def _course(group: str, text: object, title: object = "A title", lang: object = "en") -> RawText:
    return RawText(group, "course:test", "course", lang, text, title)


def test_clean_text_removes_markup_and_spacing() -> None:
    assert clean_text("  <p>Caf\u0065\u0301 &amp; more</p>\n\t<br/>next\x07 ") == "Café & more next"


def test_split_units_keeps_every_word_and_the_limit() -> None:
    units = [f"Sentence {i} has exactly six words." for i in range(10)] + ["word " * 25]
    passages = split_units(units, 20)
    assert all(len(p.split()) <= 20 for p in passages)
    assert " ".join(passages).split() == " ".join(units).split()
    assert passages[0] == " ".join(units[:3])  # whole sentences while they fit


def test_exact_duplicates_are_removed_across_case_and_punctuation() -> None:
    raws = [
        _course("c1", "Learn Python programming from scratch.", title=None),
        _course("c2", "learn python, programming from scratch!", title=None),
        _course("c3", "Learn Java programming from scratch.", title=None),
    ]
    passages, stats = build_passages(raws, CorpusOptions())
    assert [p.group for p in passages] == ["c1", "c3"]
    assert (stats["exact_duplicates"], stats["near_duplicates"]) == (1, 0)
    assert stats["duplicates_by_source"] == {"course:test": 1}


def test_near_duplicates_are_removed_and_distinct_texts_kept() -> None:
    edited = LONG.replace("small teams", "small and medium teams")
    other = LONG.replace("project management", "data analysis").replace("construction", "retail")
    options = CorpusOptions(passage_words=200)
    passages, stats = build_passages(
        [_course("a", LONG, None), _course("b", edited, None), _course("c", other, None)], options
    )
    near = NearDuplicates(options)
    a, b, c = (near.shingles(fold(t)) for t in (LONG, edited, other))
    assert len(a & b) / len(a | b) >= 0.8 > len(a & c) / len(a | c)
    assert [p.group for p in passages] == ["a", "c"]
    assert (stats["exact_duplicates"], stats["near_duplicates"]) == (0, 1)


def test_near_duplicate_threshold_is_respected() -> None:
    strict = CorpusOptions(passage_words=200, near_duplicate_jaccard=0.99)
    edited = LONG.replace("small teams", "small and medium teams")
    passages, stats = build_passages([_course("a", LONG, None), _course("b", edited, None)], strict)
    assert len(passages) == 2 and stats["near_duplicates"] == 0


def test_malformed_rows_are_counted_by_reason_not_silently_dropped() -> None:
    raws = [
        _course("ok", "A proper description of the course.", title="Proper"),
        _course("none", None, title=None),
        _course("nan", math.nan, title=math.nan),
        _course("blank", "   \n ", title=""),
        _course("number", 42, title=None),
        _course("title-only", "", title="Only a title here"),
        _course("spanish", "Un curso de programación.", lang="es"),
        _course("no-lang", "A course without a language.", lang=None),
        RawText("occ", "esco:occupation", "labels", "en", []),
        RawText("occ", "esco:occupation", "labels", "en", ["nurse"]),
        RawText("occ2", "esco:occupation", "labels", "de", ["Pfleger", None, " Pflegekraft ", "Pfleger"]),
        _course("symbols", "—— … ——", title=None),
    ]
    passages, stats = build_passages(raws, CorpusOptions())
    assert stats["rows"] == len(raws)
    assert stats["rejected"]["course:test"] == {
        "missing": 2,
        "empty": 1,
        "not text (int)": 1,
        "language es not in en/de": 1,
        "language unknown not in en/de": 1,
        "no letters or digits": 1,
    }
    assert stats["rejected"]["esco:occupation"] == {
        "empty label list": 1,
        "label list of the preferred label alone (leads the description)": 1,
    }
    assert stats["title_only"] == {"course:test": 1}
    texts = {p.group: p.text for p in passages}
    assert texts == {
        "ok": "Proper: A proper description of the course.",
        "title-only": "Only a title here",
        "occ2": "Pfleger; Pflegekraft",
    }
    rejected = sum(sum(r.values()) for r in stats["rejected"].values())
    assert rejected + len(passages) == len(raws)  # every row is accounted for


def test_heldout_split_is_by_document_group() -> None:
    raws = []
    for i in range(400):
        for lang in ("en", "de"):
            raws.append(
                RawText(f"uri{i}", "esco:skill", "description", lang, f"{LONG} Variant {i} {lang}.", None)
            )
            raws.append(RawText(f"uri{i}", "esco:skill", "labels", lang, [f"skill {i} {lang}", f"alias {i}"]))
    options = CorpusOptions(heldout_fraction=0.25, passage_words=30, near_duplicate_jaccard=1.0)
    passages, _ = build_passages(raws, options)
    sides: dict[str, set[str]] = {}
    for p in passages:
        sides.setdefault(p.group, set()).add(p.split)
    assert all(len(s) == 1 for s in sides.values())  # a group (all languages, all fields) is on one side
    held = {g for g, s in sides.items() if s == {"heldout"}}
    assert 60 < len(held) < 140
    assert held == heldout_groups(sides, 0.25, options.seed)
    assert heldout_groups(reversed(list(sides)), 0.25, options.seed) == held  # order does not matter
    assert heldout_groups(sides, 0.25, options.seed + 1) != held  # the seed does
    again, _ = build_passages(raws, options)
    assert again == passages  # deterministic


def test_near_duplicates_are_removed_before_the_split() -> None:
    """De-duplication is global and runs before the split, so no held-out passage has a copy in training."""
    raws = [_course(f"g{i}", f"{LONG} Edition {i}.", None) for i in range(60)]
    passages, stats = build_passages(raws, CorpusOptions(passage_words=200, heldout_fraction=0.5))
    assert len(passages) == 1 and stats["near_duplicates"] == 59


def test_bad_lsh_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="multiple of lsh_bands"):
        NearDuplicates(CorpusOptions(minhash_permutations=60, lsh_bands=16))
