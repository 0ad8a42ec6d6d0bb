"""Course skill enrichment: every course gets ESCO skills, each with a confidence and its evidence.

Extractors share one interface (``SkillExtractor.extract``), so the trained NER extractor of the training
issue plugs in beside the three here:

* ``PhraseExtractor`` — Aho-Corasick over normalized ESCO skill labels (pref/alt/hidden, EN + DE), word
  boundaries enforced, longest match wins; exact character offsets into the original title/description.
* ``EmbeddingExtractor`` — description sentences embedded with the linker encoder (e5) and searched in the
  skill label index; hits above a cosine threshold.
* ``SourceExtractor`` — what the catalog already states: ``esco_skills`` URIs and ``raw_skills`` strings
  linked by exact normalized label.

``enrich_courses`` runs them over the catalog with a per-(course, extractor) cache keyed by a content hash, so
a re-run only extracts new or changed courses, merges the evidence per (course, skill) and writes the
``course_skills`` table under ``<store>/course_skills/``. ``load_course_skills`` reads it back.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import ahocorasick
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from craft.settings import Settings
from knowledge.text import normalize

if TYPE_CHECKING:
    from knowledge.encoders import VectorCache
    from knowledge.store import KnowledgeBase
    from knowledge.vectors import LabelIndex

Method = Literal["phrase", "embedding", "source", "ner"]
COURSE_SKILLS_DIR = "course_skills"
TABLE_FILE = "course_skills.parquet"
CACHE_FILE = "evidence_cache.parquet"
META_FILE = "meta.json"
TABLE_COLUMNS = ["course_id", "skill_uri", "confidence", "method", "methods", "span", "start", "end", "field"]
DEFAULT_MIN_CONFIDENCE = 0.5


class SkillEvidence(BaseModel):
    """One ESCO skill found in one course, with the text that supports it."""

    model_config = ConfigDict(extra="forbid")

    skill_uri: str
    confidence: float = Field(ge=0.0, le=1.0)
    method: Method
    span: str = Field("", description="The matched text (title/description excerpt, or the source's name).")
    start: int | None = Field(
        None, description="Char offset of the span in ``field``; None for source skills."
    )
    end: int | None = None
    field: Literal["title", "text"] | None = Field(None, description="Which text the offsets refer to.")


@dataclass(frozen=True)
class CourseText:
    """What an extractor sees of a course."""

    course_id: str
    title: str
    text: str
    lang: str


class SkillExtractor(ABC):
    """Finds ESCO skills in one course. ``name`` + ``version`` key the enrichment cache: change ``version``
    whenever the output for the same input could change (new labels, thresholds, model)."""

    name: str = "extractor"

    @property
    def version(self) -> str:
        return "1"

    @abstractmethod
    def extract(self, course_id: str, title: str, text: str, lang: str) -> list[SkillEvidence]: ...

    def prefetch(self, courses: Sequence[CourseText], *, progress: bool = False) -> None:  # noqa: B027
        """Optional batch work before ``extract`` is called per course (e.g. encode all sentences at once)."""


def _fingerprint(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:12]


def _frame_fingerprint(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False).to_numpy()
    return hashlib.sha1(np.sort(hashed).tobytes()).hexdigest()[:12]


def _skill_labels(labels: pd.DataFrame, label_types: Iterable[str]) -> pd.DataFrame:
    subset = labels[(labels.kind == "skill") & labels.label_type.isin(list(label_types))]
    return subset[["uri", "lang", "label_type", "norm"]]


# --- phrase matching -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"(?:[^\W_]|[+#])+")  # the tokens ``normalize`` keeps (word chars, c++, c#)
_BREAK = re.compile(r"[,;:!?()\[\]{}<>\"|•·▪●\n]|\.(?:\s|$)")

# One-word labels are where phrase matching goes wrong ("guide" -> advise others, "current" -> electricity
# principles, "Scratch" in "from scratch"). Three rules, chosen by reviewing the one-word labels that occur in
# more than 0.2 % of the 4,591 described courses of the real catalog (with their contexts):
#   1. a one-word alt/hidden label written in lower case in ESCO is dropped: an ordinary word, mostly an
#      alias of a broader concept. Capitalized ones (Python, Jenkins, IDE) are names and stay.
#   2. a one-word label ESCO writes in capitals only matches an all-capital token ("DID", "SPARK", "LESS",
#      not "Did", "Spark", "less"); one it capitalizes only matches a capitalized token ("Scratch", "Swift").
#   3. GENERIC_LABELS: one-word labels found in > 0.5 % of descriptions mostly as ordinary words ("history
#      of Udemy", "taught in English", "Access our labs", "Windows installation"); they are ignored in
#      descriptions but still count in titles ("Business English", "Energy Principles").
GENERIC_LABELS: frozenset[str] = frozenset(
    [
        *("plan", "communication", "history", "energy", "logic", "google", "access", "windows", "source"),
        *("english", "german", "spanish", "french", "italian", "portuguese", "chinese", "japanese"),
    ]
)


def _norm_tokens(text: str) -> tuple[str, list[tuple[int, int, int, int, int]]]:
    """``normalize``-compatible token string plus, per token, (norm start, norm end, orig start, orig end,
    number of phrase breaks before it). A match must not cross a break (comma, bracket, sentence end, ...)."""
    parts: list[str] = []
    spans: list[tuple[int, int, int, int, int]] = []
    pos = breaks = prev_end = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        norm = token.lower() if token.isascii() else normalize(token)
        if not norm:
            continue
        if parts:
            pos += 1
            if _BREAK.search(text, prev_end, match.start()):
                breaks += 1
        parts.append(norm)
        spans.append((pos, pos + len(norm), match.start(), match.end(), breaks))
        pos += len(norm)
        prev_end = match.end()
    return " ".join(parts), spans


class PhraseExtractor(SkillExtractor):
    """Exact phrase matching of ESCO skill labels over the normalized title and description.

    Confidence: base by label type (pref 0.8, alt 0.7, hidden 0.5), +0.15 in the title, -0.15 when the label
    exists only in another language than the course's, -0.05 for one-word labels; clipped to [0, 1].
    Labels shorter than ``min_chars`` and the one-word rules above (``GENERIC_LABELS``) keep ordinary words
    out.
    """

    name = "phrase"
    TYPE_CONFIDENCE: ClassVar[dict[str, float]] = {"pref": 0.8, "alt": 0.7, "hidden": 0.5}
    TITLE_BOOST = 0.15
    OTHER_LANG_PENALTY = 0.15
    ONE_WORD_PENALTY = 0.05

    def __init__(
        self,
        labels: pd.DataFrame,
        *,
        label_types: Iterable[str] = ("pref", "alt", "hidden"),
        min_chars: int = 3,
        stoplist: Iterable[str] = GENERIC_LABELS,
    ) -> None:
        self.stoplist = frozenset(normalize(s) for s in stoplist)
        self.min_chars = min_chars
        table = labels[(labels.kind == "skill") & labels.label_type.isin(list(label_types))]
        table = table[["uri", "lang", "label", "label_type", "norm"]]
        one_word = ~table.norm.str.contains(" ", regex=False)
        cased = table.label.map(lambda x: any(ch.isupper() for ch in x))
        common_word = one_word & (table.label_type != "pref") & ~cased  # rule 1
        table = table[(table.norm.str.len() >= min_chars) & ~common_word]
        # norm -> uri -> (best type confidence, languages the label exists in)
        entries: dict[str, dict[str, tuple[float, set[str]]]] = defaultdict(dict)
        lower_forms: set[str] = set()
        upper_forms = set(table.norm[table.label.str.isupper()]) - set(table.norm[~table.label.str.isupper()])
        for norm, uri, lang, label_type, is_cased in zip(
            table.norm, table.uri, table.lang, table.label_type, cased[table.index], strict=True
        ):
            base = self.TYPE_CONFIDENCE.get(label_type, min(self.TYPE_CONFIDENCE.values()))
            old = entries[norm].get(uri)
            entries[norm][uri] = (max(base, old[0]) if old else base, (old[1] if old else set()) | {lang})
            if not is_cased:
                lower_forms.add(norm)
        self._entries = dict(entries)
        # rule 2: one-word labels that ESCO only ever writes capitalized / in capitals
        self._needs_capital = {n for n in self._entries if " " not in n and n not in lower_forms}
        self._needs_upper = self._needs_capital & upper_forms
        self._automaton = ahocorasick.Automaton()
        for norm in self._entries:
            self._automaton.add_word(norm, norm)
        if self._entries:
            self._automaton.make_automaton()
        self._version = "phrase4:" + _fingerprint(
            _frame_fingerprint(table),
            sorted(self.stoplist),
            min_chars,
            self.TYPE_CONFIDENCE,
            self.TITLE_BOOST,
            self.OTHER_LANG_PENALTY,
            self.ONE_WORD_PENALTY,
        )

    @classmethod
    def from_kb(cls, kb: KnowledgeBase, **kwargs: Any) -> PhraseExtractor:
        return cls(kb.labels, **kwargs)

    @property
    def version(self) -> str:
        return self._version

    @property
    def size(self) -> int:
        """Number of distinct normalized labels in the automaton."""
        return len(self._entries)

    def matches(self, text: str, *, field: str = "text") -> list[tuple[str, int, int]]:
        """Non-overlapping label matches ``(norm, orig start, orig end)`` in text order; on overlaps the
        longest match wins, then the leftmost. ``field='text'`` applies the generic-word stoplist."""
        if not self._entries or not text:
            return []
        hay, spans = _norm_tokens(text)
        found: list[tuple[int, int, str]] = []
        last = len(hay) - 1
        for end, norm in self._automaton.iter(hay):
            start = end - len(norm) + 1
            if (start == 0 or hay[start - 1] == " ") and (end == last or hay[end + 1] == " "):
                found.append((start, end + 1, norm))
        found.sort(key=lambda m: (m[0] - m[1], m[0]))
        taken = bytearray(len(spans))
        out: list[tuple[str, int, int]] = []
        starts = [s[0] for s in spans]
        for start, end, norm in found:
            first, last_token = _bisect(starts, start), _bisect(starts, end - 1)
            if spans[first][4] != spans[last_token][4] or any(taken[first : last_token + 1]):
                continue  # crosses a phrase break, or overlaps a longer match
            taken[first : last_token + 1] = b"\x01" * (last_token + 1 - first)
            orig_start, orig_end = spans[first][2], spans[last_token][3]
            if field == "text" and norm in self.stoplist:
                continue
            surface = text[orig_start:orig_end]
            if norm in self._needs_capital and not any(ch.isupper() for ch in surface):
                continue
            if norm in self._needs_upper and not surface.isupper():
                continue
            out.append((norm, orig_start, orig_end))
        out.sort(key=lambda m: m[1])
        return out

    def extract(self, course_id: str, title: str, text: str, lang: str) -> list[SkillEvidence]:
        best: dict[str, SkillEvidence] = {}
        for field, source in (("title", title or ""), ("text", text or "")):
            for norm, start, end in self.matches(source, field=field):
                one_word = " " not in norm
                for uri, (base, langs) in self._entries[norm].items():
                    score = base
                    if field == "title":
                        score += self.TITLE_BOOST
                    if lang and lang not in langs:
                        score -= self.OTHER_LANG_PENALTY
                    if one_word:
                        score -= self.ONE_WORD_PENALTY
                    score = round(min(1.0, max(0.0, score)), 3)
                    if uri not in best or score > best[uri].confidence:
                        best[uri] = SkillEvidence(
                            skill_uri=uri,
                            confidence=score,
                            method="phrase",
                            span=source[start:end],
                            start=start,
                            end=end,
                            field=field,  # type: ignore[arg-type]
                        )
        return list(best.values())


def _bisect(starts: list[int], pos: int) -> int:
    """Index of the token that contains normalized position ``pos``."""
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if starts[mid] <= pos:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


# --- source-provided skills --------------------------------------------------------------------------


class SourceExtractor(SkillExtractor):
    """Skills the catalog states: ESCO URIs (confidence 0.9) and raw skill names linked by exact normalized
    label (0.8; when a name is the label of several skills, only those with the best label type are kept).
    URIs outside the snapshot's taxonomy (older ESCO versions) are dropped."""

    name = "source"
    URI_CONFIDENCE = 0.9
    RAW_CONFIDENCE = 0.8

    def __init__(
        self,
        labels: pd.DataFrame,
        courses: pd.DataFrame,
        skill_names: dict[str, str] | None = None,
    ) -> None:
        table = _skill_labels(labels, ("pref", "alt", "hidden"))
        rank = {"pref": 0, "alt": 1, "hidden": 2}
        by_norm: dict[str, dict[str, int]] = defaultdict(dict)
        for norm, uri, label_type in zip(table.norm, table.uri, table.label_type, strict=True):
            r = rank.get(label_type, 3)
            by_norm[norm][uri] = min(r, by_norm[norm].get(uri, r))
        self._lookup: dict[str, list[str]] = {}
        for norm, uris in by_norm.items():
            top = min(uris.values())
            self._lookup[norm] = sorted(u for u, r in uris.items() if r == top)
        self._names = skill_names if skill_names is not None else {}
        self._known = set(table.uri) | set(self._names)
        self._by_course: dict[str, tuple[list[str], list[str]]] = {}
        for cid, raw, esco in zip(courses.id, courses.raw_skills, courses.esco_skills, strict=True):
            raw_list, esco_list = _as_list(raw), _as_list(esco)
            if raw_list or esco_list:
                self._by_course[cid] = (raw_list, esco_list)
        self._version = "source1:" + _fingerprint(_frame_fingerprint(table), len(self._known))

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> SourceExtractor:
        return cls(kb.labels, kb.courses, {uri: c.label("en") for uri, c in kb.skills.items()})

    @property
    def version(self) -> str:
        return self._version

    def link(self, raw: str) -> list[str]:
        return self._lookup.get(normalize(raw), [])

    def extract(self, course_id: str, title: str, text: str, lang: str) -> list[SkillEvidence]:
        raw_skills, esco_skills = self._by_course.get(course_id, ([], []))
        best: dict[str, SkillEvidence] = {}
        for uri in esco_skills:
            if uri in self._known and uri not in best:
                best[uri] = SkillEvidence(
                    skill_uri=uri,
                    confidence=self.URI_CONFIDENCE,
                    method="source",
                    span=self._names.get(uri, ""),
                )
        for raw in raw_skills:
            for uri in self.link(raw):
                if uri not in best:
                    best[uri] = SkillEvidence(
                        skill_uri=uri, confidence=self.RAW_CONFIDENCE, method="source", span=raw
                    )
        return list(best.values())


def _text(value: object) -> str:
    """A text cell as a string: None and NaN (missing in pandas) become ""."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _as_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(v) for v in value if v]  # type: ignore[union-attr]


# --- embedding linking ---------------------------------------------------------------------------------

_SEGMENT = re.compile(r"[^\n.!?;:•▪●|]+")
_WORD = re.compile(r"\S*\w\S*")  # a word: a non-space run with a letter or digit


def split_phrases(text: str, *, max_words: int = 30, min_words: int = 2) -> list[tuple[str, int, int]]:
    """Sentences / bullet items of ``text`` as ``(phrase, start, end)``; long ones cut into ``max_words``
    windows, fragments under ``min_words`` words dropped."""
    out: list[tuple[str, int, int]] = []
    for segment in _SEGMENT.finditer(text or ""):
        words = list(_WORD.finditer(segment.group()))
        offset = segment.start()
        for i in range(0, len(words), max_words):
            window = words[i : i + max_words]
            if len(window) < min_words:
                continue
            start, end = offset + window[0].start(), offset + window[-1].end()
            phrase = text[start:end].strip(" -–,*()[]\"'")
            if sum(ch.isalpha() for ch in phrase) >= 6:
                out.append((phrase, start, end))
    return out


class EmbeddingExtractor(SkillExtractor):
    """Title and description sentences → nearest ESCO skill labels in the dense skill index (e5, cosine).

    e5-small cosines are compressed: unrelated text scores ~0.80–0.86 against skill labels, and short generic
    phrases ("Important questions include", "Module 1") reach 0.90+ against *some* label. On 40 real courses
    (inspected by hand) a hit was mostly right when (a) its cosine is ≥ ``threshold`` 0.89, (b) it stands out:
    ≥ ``margin`` 0.03 above the ``k``-th (10th) hit of the same phrase — generic phrases are close to many
    labels alike — and (c) the description phrase has ≥ ``min_words`` 5 words (the title is exempt). At most
    ``per_phrase`` hits per phrase. Confidence rises linearly from 0.5 at the threshold to 0.9 at cosine 0.96.
    """

    name = "embedding"

    def __init__(
        self,
        index: LabelIndex,
        cache: VectorCache,
        *,
        threshold: float = 0.89,
        margin: float = 0.03,
        max_phrases: int = 12,
        max_words: int = 30,
        min_words: int = 5,
        k: int = 10,
        per_phrase: int = 3,
    ) -> None:
        self.index, self.cache = index, cache
        self.threshold, self.margin, self.k, self.per_phrase = threshold, margin, k, per_phrase
        self.max_phrases, self.max_words, self.min_words = max_phrases, max_words, min_words
        self._version = "embedding1:" + _fingerprint(
            index.name,
            cache.encoder.name,
            threshold,
            margin,
            max_phrases,
            max_words,
            min_words,
            k,
            per_phrase,
        )

    @classmethod
    def from_settings(cls, settings: Settings, kb: KnowledgeBase, **kwargs: Any) -> EmbeddingExtractor:
        from knowledge.encoders import get_encoder
        from knowledge.indexes import open_index, vector_cache

        encoder = get_encoder(settings.linker_model, settings)
        return cls(open_index(settings, kb, "skill", encoder), vector_cache(settings, encoder), **kwargs)

    @property
    def version(self) -> str:
        return self._version

    def phrases(self, title: str, text: str) -> list[tuple[str, int, int, str]]:
        """The title plus up to ``max_phrases`` distinct description phrases: (phrase, start, end, field)."""
        out: list[tuple[str, int, int, str]] = []
        if title and title.strip():
            out.append((title.strip(), 0, len(title), "title"))
        seen = {title.strip().lower()} if title else set()
        for phrase, start, end in split_phrases(text, max_words=self.max_words, min_words=self.min_words):
            if phrase.lower() in seen:
                continue
            seen.add(phrase.lower())
            out.append((phrase, start, end, "text"))
            if len(out) > self.max_phrases:
                break
        return out

    def confidence(self, cosine: float) -> float:
        value = 0.5 + 0.4 * (cosine - self.threshold) / max(1e-6, 0.96 - self.threshold)
        return round(min(0.9, max(0.0, value)), 3)

    def prefetch(self, courses: Sequence[CourseText], *, progress: bool = False) -> None:
        texts = [p for c in courses for p, *_ in self.phrases(c.title, c.text)]
        self.cache.encode(texts, query=True, progress="course phrases" if progress else None)

    def extract(self, course_id: str, title: str, text: str, lang: str) -> list[SkillEvidence]:
        phrases = self.phrases(title, text)
        if not phrases:
            return []
        vectors = self.cache.encode([p for p, *_ in phrases], query=True)
        best: dict[str, SkillEvidence] = {}
        for (phrase, start, end, field), vector in zip(phrases, vectors, strict=True):
            hits = self.index.search(vector, k=self.k)
            if not hits:
                continue
            floor = max(self.threshold, hits[-1].score + self.margin)
            kept = 0
            for hit in hits:
                if hit.score < floor or kept >= self.per_phrase:
                    break
                if hit.uri in best and best[hit.uri].confidence >= self.confidence(hit.score):
                    continue
                kept += 1
                best[hit.uri] = SkillEvidence(
                    skill_uri=hit.uri,
                    confidence=self.confidence(hit.score),
                    method="embedding",
                    span=phrase,
                    start=start,
                    end=end,
                    field=field,  # type: ignore[arg-type]
                )
        return list(best.values())


def default_extractors(
    settings: Settings, kb: KnowledgeBase, *, embedding: bool = False, ner: bool = False
) -> list[SkillExtractor]:
    """Phrase + source extractors; the embedding extractor only on request (≈ 30 min for the full catalog
    on 2 CPU cores, cached afterwards), the trained NER tagger (``craft train ner``) likewise."""
    extractors: list[SkillExtractor] = [PhraseExtractor.from_kb(kb), SourceExtractor.from_kb(kb)]
    if embedding:
        extractors.append(EmbeddingExtractor.from_settings(settings, kb))
    if ner:
        from knowledge.ner_extractor import NerExtractor  # it imports this module

        extractors.append(NerExtractor.from_settings(settings, kb))
    return extractors


# --- enrichment with an incremental cache --------------------------------------------------------------


def course_store(settings: Settings) -> Path:
    return settings.store_dir / COURSE_SKILLS_DIR


def content_hash(
    title: object, description: object, raw_skills: object, esco_skills: object, lang: object
) -> str:
    """sha1 over everything an extractor may read of a course."""
    parts = [
        _text(title),
        _text(description),
        "|".join(_as_list(raw_skills)),
        "|".join(_as_list(esco_skills)),
        _text(lang),
    ]
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def enrichable(courses: pd.DataFrame) -> pd.DataFrame:
    """Courses with a description or with source-provided skills (title-only list rows are left out)."""
    has_source = courses.raw_skills.map(lambda v: bool(_as_list(v))) | courses.esco_skills.map(
        lambda v: bool(_as_list(v))
    )
    return courses[courses.has_description.astype(bool) | has_source]


def _read_cache(path: Path) -> pd.DataFrame:
    if path.exists():
        return pd.read_parquet(path)
    return pd.DataFrame({"course_id": [], "extractor": [], "key": [], "evidence": []}, dtype=str)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def merge_evidence(evidence: Iterable[tuple[str, SkillEvidence]]) -> pd.DataFrame:
    """One row per (course, skill): the best evidence (highest confidence; offsets and title win ties) and
    the sorted list of methods that found it."""
    best: dict[tuple[str, str], SkillEvidence] = {}
    methods: dict[tuple[str, str], set[str]] = defaultdict(set)

    def rank(e: SkillEvidence) -> tuple[float, int, int]:
        return (e.confidence, int(e.start is not None), int(e.field == "title"))

    for course_id, ev in evidence:
        key = (course_id, ev.skill_uri)
        methods[key].add(ev.method)
        if key not in best or rank(ev) > rank(best[key]):
            best[key] = ev
    rows = [
        {
            "course_id": cid,
            "skill_uri": uri,
            "confidence": ev.confidence,
            "method": ev.method,
            "methods": sorted(methods[(cid, uri)]),
            "span": ev.span,
            "start": ev.start,
            "end": ev.end,
            "field": ev.field,
        }
        for (cid, uri), ev in sorted(best.items())
    ]
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    frame["start"] = frame["start"].astype("Int64")
    frame["end"] = frame["end"].astype("Int64")
    frame["confidence"] = frame["confidence"].astype(float)
    return frame


def enrich_courses(
    settings: Settings,
    kb: KnowledgeBase,
    extractors: Sequence[SkillExtractor],
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """Extract, cache and merge skills for every enrichable course; returns (and writes) the course_skills
    table. Only courses whose content hash or extractor version changed are extracted again; the counts of
    extracted and reused (course, extractor) pairs are in ``frame.attrs['stats']``."""
    folder = course_store(settings)
    cache_path = folder / CACHE_FILE
    courses = enrichable(kb.courses)
    items = [
        CourseText(cid, _text(title), _text(desc), _text(lang))
        for cid, title, desc, lang in zip(
            courses.id, courses.title, courses.description, courses.language, strict=True
        )
    ]
    hashes = [
        content_hash(t, d, r, e, lang)
        for t, d, r, e, lang in zip(
            courses.title,
            courses.description,
            courses.raw_skills,
            courses.esco_skills,
            courses.language,
            strict=True,
        )
    ]
    cache = _read_cache(cache_path)
    names = [x.name for x in extractors]
    if len(set(names)) != len(names):
        raise ValueError(f"extractor names must be unique: {names}")
    kept = [cache[~cache.extractor.isin(names)]]
    stats = {"courses": len(items), "extracted": 0, "reused": 0}
    evidence: list[tuple[str, SkillEvidence]] = []
    for extractor in extractors:
        keys = [_fingerprint(h, extractor.name, extractor.version) for h in hashes]
        mine = cache[cache.extractor == extractor.name]
        cached = dict(zip(mine.key, mine.evidence, strict=True))
        todo = [(item, key) for item, key in zip(items, keys, strict=True) if key not in cached]
        if todo:
            extractor.prefetch([item for item, _ in todo], progress=progress)
        fresh: dict[str, str] = {}
        for item, key in tqdm(todo, desc=f"skills: {extractor.name}", unit="course", disable=not progress):
            found = extractor.extract(item.course_id, item.title, item.text, item.lang)
            fresh[key] = json.dumps([e.model_dump(mode="json") for e in found], ensure_ascii=False)
        stats["extracted"] += len(todo)
        stats["reused"] += len(items) - len(todo)
        blobs = [fresh.get(key) or cached[key] for key in keys]
        kept.append(
            pd.DataFrame(
                {
                    "course_id": [i.course_id for i in items],
                    "extractor": extractor.name,
                    "key": keys,
                    "evidence": blobs,
                }
            )
        )
        for item, blob in zip(items, blobs, strict=True):
            evidence.extend((item.course_id, SkillEvidence.model_validate(e)) for e in json.loads(blob))
    _write_parquet(pd.concat(kept, ignore_index=True), cache_path)
    table = merge_evidence(evidence)
    _write_parquet(table, folder / TABLE_FILE)
    manifest = getattr(kb, "manifest", None)
    meta = {
        "snapshot": getattr(manifest, "version", None),
        "extractors": {x.name: x.version for x in extractors},
        "rows": len(table),
        **stats,
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    table.attrs["stats"] = stats
    return table


def read_course_skills(settings: Settings) -> pd.DataFrame:
    path = course_store(settings) / TABLE_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; run the course skill enrichment (enrich_courses) first"
        )
    return pd.read_parquet(path)


def load_course_skills(
    settings: Settings, min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> dict[str, set[str]]:
    """course_id → ESCO skill URIs with confidence ≥ ``min_confidence`` (for ground truth and evaluation)."""
    table = read_course_skills(settings)
    table = table[table.confidence >= min_confidence]
    out: dict[str, set[str]] = defaultdict(set)
    for cid, uri in zip(table.course_id, table.skill_uri, strict=True):
        out[cid].add(uri)
    return dict(out)
