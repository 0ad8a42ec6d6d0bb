"""The trained skill tagger (``craft train ner``) as a ``SkillExtractor``: spans in, ESCO skills out.

A token-classification model (multilingual e5-small, tags ``O``/``B-SKILL``/``I-SKILL``) marks skill mentions
in course titles and descriptions; each span is then linked to ESCO: an exact normalized label first (EN + DE
pref/alt/hidden; when a label names several skills, those with the best label type), else the closest label
by character similarity (rapidfuzz ``ratio`` ≥ ``fuzzy_threshold``). Only URIs of the snapshot's skills come
out, each with the span's character offsets.

Training and run time must see the same words and segments, so the word tokenizer, the segmenter and the
BIO encoding live here (the knowledge layer) and ``training.ner`` imports them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
from rapidfuzz import fuzz, process

from craft.settings import Settings
from knowledge.course_skills import (
    CourseText,
    SkillEvidence,
    SkillExtractor,
    _fingerprint,
    _frame_fingerprint,
)
from knowledge.text import normalize

if TYPE_CHECKING:
    from knowledge.models import ModelManifest
    from knowledge.store import KnowledgeBase

TAGS: tuple[str, ...] = ("O", "B-SKILL", "I-SKILL")
MODEL_NAME = "ner"  # the registry name ``craft train ner`` registers under (``config.finetune_of``)

# The tokens of ``course_skills._norm_tokens`` (word characters, c++, c#), so weak-label offsets fall on word
# boundaries, plus every other non-space character as a word of its own (punctuation).
_WORD = re.compile(r"(?:[^\W_]|[+#])+|\S")
_SENTENCE_END = frozenset(".!?;")
_BULLETS = frozenset("•▪●·|")

Span = tuple[int, int]


def word_spans(text: str) -> list[Span]:
    """Character ``(start, end)`` of every word of ``text``."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text or "")]


def segment(text: str, words: Sequence[Span], *, max_words: int, protect: Sequence[Span] = ()) -> list[Span]:
    """Sentences / lines / bullet items of ``text`` as word-index ranges ``[i, j)``, long ones cut into
    windows of at most ``max_words`` words; a cut never falls inside a ``protect`` range (word indices)."""
    if max_words < 1:
        raise ValueError(f"max_words must be ≥ 1, got {max_words}")
    if not words:
        return []
    cuts: list[int] = []  # word indices that start a new sentence
    for i in range(1, len(words)):
        gap = text[words[i - 1][1] : words[i][0]]
        previous = text[words[i - 1][0] : words[i - 1][1]]
        current = text[words[i][0] : words[i][1]]
        if "\n" in gap or (previous in _SENTENCE_END and gap) or current in _BULLETS:
            cuts.append(i)
    inside: dict[int, Span] = {}
    for start, end in protect:
        for k in range(start + 1, end):
            inside[k] = (start, end)
    cuts = [c for c in cuts if c not in inside]
    out: list[Span] = []
    for first, stop in zip([0, *cuts], [*cuts, len(words)], strict=True):
        while stop - first > max_words:
            cut = first + max_words
            if cut in inside:
                span_start, span_end = inside[cut]
                cut = span_start if span_start > first else span_end
            out.append((first, cut))
            first = cut
        if stop > first:
            out.append((first, stop))
    return out


def spans_to_tags(words: Sequence[Span], spans: Sequence[Span]) -> list[str]:
    """BIO tags of ``words`` for character ``spans``; a span covers every word it overlaps (partial word
    selections of hand annotations snap outwards). Overlapping spans must be resolved before."""
    tags = ["O"] * len(words)
    for start, end in sorted(spans):
        covered = [i for i, (ws, we) in enumerate(words) if ws < end and we > start]
        for n, i in enumerate(covered):
            tags[i] = "B-SKILL" if n == 0 else "I-SKILL"
    return tags


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Word-index ranges ``[i, j)`` of the skill mentions in BIO ``tags``; an ``I`` after ``O`` opens a
    span (lenient, as seqeval's default mode reads it)."""
    out: list[Span] = []
    start: int | None = None
    for i, tag in enumerate(tags):
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            if start is not None:
                out.append((start, i))
            start = i
        elif tag == "O" and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(tags)))
    return out


@dataclass(frozen=True)
class PredictedSpan:
    """A skill mention the model found: character offsets into the text, and its mean tag probability."""

    start: int
    end: int
    text: str
    score: float


class NerTagger:
    """Runs a token-classification model over texts: words → segments → first-sub-token tags → spans."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = 128,
        max_words: int = 48,
        batch_size: int = 32,
    ) -> None:
        import torch

        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_length, self.max_words, self.batch_size = max_length, max_words, batch_size
        self.device = next(model.parameters()).device
        self._torch = torch
        id2label = {int(k): v for k, v in model.config.id2label.items()}
        if sorted(id2label.values()) != sorted(TAGS):
            raise ValueError(f"model labels {sorted(id2label.values())} are not the tag set {list(TAGS)}")
        self.id2label = id2label

    @classmethod
    def load(cls, folder: Path, **kwargs: Any) -> NerTagger:
        """A saved tagger folder (``save_pretrained`` of model and tokenizer); never touches a hub."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForTokenClassification.from_pretrained(str(folder), local_files_only=True)
        return cls(model, tokenizer, **kwargs)

    def tag_words(self, batch: Sequence[Sequence[str]]) -> list[list[tuple[str, float]]]:
        """(tag, probability) per word; words cut off by ``max_length`` come back as ``("O", 1.0)``."""
        out: list[list[tuple[str, float]]] = [[] for _ in batch]
        order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
        torch = self._torch
        for offset in range(0, len(order), self.batch_size):
            chunk = order[offset : offset + self.batch_size]
            encoded = self.tokenizer(
                [list(batch[i]) for i in chunk],
                is_split_into_words=True,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                inputs = {k: v.to(self.device) for k, v in encoded.items()}
                probs = torch.softmax(self.model(**inputs).logits.float(), dim=-1).cpu()
            best, index = probs.max(dim=-1)
            for row, i in enumerate(chunk):
                tags: list[tuple[str, float]] = [("O", 1.0)] * len(batch[i])
                seen: set[int] = set()
                for position, word in enumerate(encoded.word_ids(row)):
                    if word is None or word in seen:
                        continue
                    seen.add(word)
                    tags[word] = (self.id2label[int(index[row, position])], float(best[row, position]))
                out[i] = tags
        return out

    def spans(self, texts: Sequence[str]) -> list[list[PredictedSpan]]:
        """Skill mentions per text, with character offsets into that text."""
        jobs: list[tuple[int, list[Span]]] = []
        for n, text in enumerate(texts):
            words = word_spans(text)
            for first, stop in segment(text, words, max_words=self.max_words):
                jobs.append((n, words[first:stop]))
        tagged = self.tag_words([[texts[n][s:e] for s, e in words] for n, words in jobs])
        out: list[list[PredictedSpan]] = [[] for _ in texts]
        for (n, words), tags in zip(jobs, tagged, strict=True):
            for first, stop in tags_to_spans([t for t, _ in tags]):
                start, end = words[first][0], words[stop - 1][1]
                score = sum(p for _, p in tags[first:stop]) / (stop - first)
                out[n].append(PredictedSpan(start, end, texts[n][start:end], round(score, 4)))
        return out


class NerExtractor(SkillExtractor):
    """Skill mentions tagged by the trained NER model, linked to ESCO skills (exact label, else fuzzy).

    Confidence = the span's mean tag probability × the link's weight: exact label by type (pref 0.9, alt
    0.85, hidden 0.7), fuzzy 0.7 × similarity. ``min_chars``: shorter spans link only exactly.
    """

    name = "ner"
    TYPE_WEIGHT: ClassVar[dict[str, float]] = {"pref": 0.9, "alt": 0.85, "hidden": 0.7}
    FUZZY_WEIGHT = 0.7

    def __init__(
        self,
        tagger: NerTagger,
        labels: pd.DataFrame,
        *,
        model_name: str,
        fuzzy_threshold: float = 90.0,
        min_chars: int = 5,
    ) -> None:
        self.tagger, self.model_name = tagger, model_name
        self.fuzzy_threshold, self.min_chars = fuzzy_threshold, min_chars
        table = labels[(labels.kind == "skill") & labels.label_type.isin(list(self.TYPE_WEIGHT))]
        table = table[["uri", "label_type", "norm"]]
        by_norm: dict[str, dict[str, float]] = defaultdict(dict)
        for norm, uri, label_type in zip(table.norm, table.uri, table.label_type, strict=True):
            weight = self.TYPE_WEIGHT[label_type]
            by_norm[norm][uri] = max(weight, by_norm[norm].get(uri, 0.0))
        self._lookup: dict[str, list[tuple[str, float]]] = {}
        for norm, uris in by_norm.items():
            top = max(uris.values())
            self._lookup[norm] = sorted((u, w) for u, w in uris.items() if w == top)
        self._norms = list(self._lookup)
        self._links: dict[str, list[tuple[str, float]]] = {}
        self._pending: dict[tuple[str, str], tuple[list[PredictedSpan], list[PredictedSpan]]] = {}
        self._version = "ner1:" + _fingerprint(
            model_name, _frame_fingerprint(table), fuzzy_threshold, min_chars, self.TYPE_WEIGHT
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, kb: KnowledgeBase, *, batch_size: int = 32, **kwargs: Any
    ) -> NerExtractor:
        """The registry's trained ``ner`` model (``ModelMissing`` names the training command if none)."""
        from knowledge.models import resolve

        folder, manifest = resolve(settings, MODEL_NAME)
        return cls(
            tagger_for(folder, manifest, batch_size=batch_size), kb.labels, model_name=manifest.name, **kwargs
        )

    @property
    def version(self) -> str:
        return self._version

    def link(self, text: str) -> list[tuple[str, float]]:
        """ESCO skills ``(uri, link weight)`` for a span's text; empty when nothing is close enough."""
        norm = normalize(text)
        if norm in self._links:
            return self._links[norm]
        found = self._lookup.get(norm, [])
        if not found and len(norm) >= self.min_chars:
            best = process.extractOne(norm, self._norms, scorer=fuzz.ratio, score_cutoff=self.fuzzy_threshold)
            if best is not None:
                found = [(uri, self.FUZZY_WEIGHT * best[1] / 100.0) for uri, _ in self._lookup[best[0]]]
        self._links[norm] = found
        return found

    def prefetch(self, courses: Sequence[CourseText], *, progress: bool = False) -> None:
        """Tag every title and description in batches; ``extract`` then only links."""
        from tqdm.auto import tqdm

        self._pending.clear()
        step = 256
        for offset in tqdm(
            range(0, len(courses), step), desc="skills: ner (tagging)", unit="batch", disable=not progress
        ):
            part = courses[offset : offset + step]
            texts = [c.title or "" for c in part] + [c.text or "" for c in part]
            spans = self.tagger.spans(texts)
            for n, course in enumerate(part):
                self._pending[(course.title or "", course.text or "")] = (spans[n], spans[len(part) + n])

    def extract(self, course_id: str, title: str, text: str, lang: str) -> list[SkillEvidence]:
        key = (title or "", text or "")
        if key in self._pending:
            title_spans, text_spans = self._pending.pop(key)
        else:
            title_spans, text_spans = self.tagger.spans(list(key))
        best: dict[str, SkillEvidence] = {}
        for field, spans in (("title", title_spans), ("text", text_spans)):
            for span in spans:
                for uri, weight in self.link(span.text):
                    score = round(min(1.0, max(0.0, span.score * weight)), 3)
                    if uri not in best or score > best[uri].confidence:
                        best[uri] = SkillEvidence(
                            skill_uri=uri,
                            confidence=score,
                            method="ner",
                            span=span.text,
                            start=span.start,
                            end=span.end,
                            field=field,  # type: ignore[arg-type]
                        )
        return list(best.values())


def tagger_for(folder: Path, manifest: ModelManifest, **kwargs: Any) -> NerTagger:
    """A tagger with the segment and input lengths the model was trained with (from its manifest)."""
    train = manifest.config.get("train", {})
    return NerTagger.load(
        folder,
        max_length=int(train.get("max_length", 128)),
        max_words=int(train.get("max_words", 48)),
        **kwargs,
    )
