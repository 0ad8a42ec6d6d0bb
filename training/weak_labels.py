"""Weak labels for the skill tagger: ESCO label matches in course texts, as BIO-tagged segments.

The matching is ``PhraseExtractor.matches`` (the production phrase extractor: word boundaries, no match
across punctuation, longest-then-leftmost on overlaps, its one-word rules and generic-word stoplist). On top:

* a **frequency cutoff** — a one-word label matched in more than ``max_one_word_df`` of the catalog's
  descriptions is an ordinary word more often than a skill; it is dropped (the list goes into the data
  summary, so it can be reviewed);
* **conflict resolution** (``resolve_conflicts``) — overlapping spans keep the longest, then the earliest;
  the phrase matcher already guarantees it for its own matches, hand annotations need it;
* **segments** — sentences / lines / bullet items, windows of ``max_words`` words never cutting a span.

The same labeler pre-annotates the annotation exporter's tasks (``training.annotation``), so hand
annotators correct exactly what the model was trained on.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from knowledge.course_skills import PhraseExtractor
from knowledge.ner_extractor import Span, segment, spans_to_tags, word_spans

if TYPE_CHECKING:
    from knowledge.store import KnowledgeBase

Origin = Literal["weak", "hand"]


@dataclass(frozen=True)
class CatalogText:
    """One described course as the weak labeler and the exporter see it."""

    course_id: str
    source: str
    lang: str
    title: str
    text: str


@dataclass(frozen=True)
class Segment:
    """One training / evaluation example: words and their BIO tags, with where they came from."""

    course_id: str
    source: str
    lang: str
    field: str
    origin: Origin
    words: tuple[str, ...]
    tags: tuple[str, ...]

    @property
    def positive(self) -> bool:
        return any(t != "O" for t in self.tags)


def _cell(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def catalog_texts(kb: KnowledgeBase, languages: Iterable[str] = ("en", "de")) -> list[CatalogText]:
    """The described courses in ``languages`` (ESCO labels exist in EN and DE only), sorted by id."""
    courses = kb.courses[kb.courses.has_description.astype(bool)]
    courses = courses[courses.language.isin(list(languages))].sort_values("id")
    return [
        CatalogText(cid, source, lang, _cell(title), _cell(desc))
        for cid, source, lang, title, desc in zip(
            courses.id, courses.source, courses.language, courses.title, courses.description, strict=True
        )
    ]


def capitalized_norms(labels: pd.DataFrame) -> frozenset[str]:
    """Normalized skill labels that ESCO writes with a capital letter in every label that has them (names)."""
    skills = labels[labels.kind == "skill"]
    cased = skills.label.map(lambda x: any(ch.isupper() for ch in x))
    return frozenset(set(skills.norm[cased]) - set(skills.norm[~cased]))


def resolve_conflicts(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping character spans in text order: on an overlap the longest wins, then the earliest."""
    kept: list[Span] = []
    for start, end in sorted(set(spans), key=lambda s: (s[0] - s[1], s[0])):
        if end > start and all(end <= s or start >= e for s, e in kept):
            kept.append((start, end))
    return sorted(kept)


class WeakLabeler:
    """ESCO label matches as skill spans, minus the one-word labels too frequent to be skills."""

    def __init__(self, phrase: PhraseExtractor, generic: dict[str, float] | None = None) -> None:
        self.phrase = phrase
        self.generic = dict(generic or {})

    @classmethod
    def fit(
        cls,
        phrase: PhraseExtractor,
        texts: Sequence[CatalogText],
        *,
        max_one_word_df: float,
        names: frozenset[str] = frozenset(),
    ) -> WeakLabeler:
        """Count in how many descriptions each one-word label matches; drop those above the cutoff.

        ``names`` (labels ESCO only writes capitalized: Python, SQL, Linux) are exempt: a tech-heavy catalog
        mentions them often because they are its subject, not because they are ordinary words."""
        if not 0 < max_one_word_df <= 1:
            raise ValueError(f"max_one_word_df must be in (0, 1], got {max_one_word_df}")
        df: Counter[str] = Counter()
        for item in texts:
            df.update({norm for norm, _, _ in phrase.matches(item.text, field="text") if " " not in norm})
        n = max(1, len(texts))
        generic = {
            norm: round(c / n, 4) for norm, c in df.items() if c / n > max_one_word_df and norm not in names
        }
        return cls(phrase, generic)

    def spans(self, text: str, field: str = "text") -> list[tuple[int, int, str]]:
        """``(start, end, norm)`` of the skill mentions in ``text``; the cutoff applies to descriptions
        only (a one-word title such as "Marketing" names the course's subject)."""
        found = [
            (start, end, norm)
            for norm, start, end in self.phrase.matches(text, field=field)
            if field == "title" or norm not in self.generic
        ]
        kept = set(resolve_conflicts((s, e) for s, e, _ in found))
        return [m for m in found if (m[0], m[1]) in kept]


def to_segments(
    item: CatalogText,
    field: str,
    spans: Sequence[Span],
    *,
    max_words: int,
    min_words: int,
    origin: Origin = "weak",
    text: str | None = None,
) -> list[Segment]:
    """``text`` (default: the item's title or description) cut into BIO-tagged segments; description
    segments with fewer than ``min_words`` alphanumeric words are dropped (headings, stray bullets)."""
    text = text if text is not None else (item.title if field == "title" else item.text)
    words = word_spans(text)
    spans = resolve_conflicts(spans)
    protect = []
    for start, end in spans:
        covered = [i for i, (ws, we) in enumerate(words) if ws < end and we > start]
        if covered:
            protect.append((covered[0], covered[-1] + 1))
    out: list[Segment] = []
    for first, stop in segment(text, words, max_words=max_words, protect=protect):
        part = words[first:stop]
        tokens = tuple(text[s:e] for s, e in part)
        if field != "title" and sum(any(ch.isalnum() for ch in t) for t in tokens) < min_words:
            continue
        inner = [(s, e) for s, e in spans if s < part[-1][1] and e > part[0][0]]
        out.append(
            Segment(
                item.course_id,
                item.source,
                item.lang,
                field,
                origin,
                tokens,
                tuple(spans_to_tags(part, inner)),
            )
        )
    return out


def held_out(course_id: str, fraction: float, seed: int) -> bool:
    """A fixed, seeded course split that does not move when other courses change."""
    value = int(hashlib.sha1(f"{seed}:{course_id}".encode()).hexdigest()[:12], 16) / float(16**12)
    return value < fraction


def sample(items: Sequence[Segment], n: int | None, rng: np.random.Generator) -> list[Segment]:
    """``n`` items drawn without replacement in their original order (all when ``n`` is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    keep = sorted(rng.choice(len(items), size=n, replace=False).tolist())
    return [items[i] for i in keep]
