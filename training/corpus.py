"""The education-domain text corpus for continued masked-LM pretraining (stage ``mlm``).

Sources, from the knowledge snapshot (``knowledge.store.get_knowledge``), in the configured languages
(EN + DE):

* every course catalog: title + description (German catalogs included; a course without a description
  contributes its title alone, counted as ``title_only``);
* ESCO occupations and skills: ``"<preferred label>: <description>"`` and the label list
  ``"<preferred>; <alternative>; …"`` per concept and language (hidden labels are left out: they are
  misspellings and obsolete terms kept only for search; so are the held-out labels of
  ``craft bench --suite linking``, so that benchmark never scores labels a model built on this corpus read).

Pipeline: text normalized (HTML entities and tags, Unicode NFC, control characters, whitespace), documents
split into passages of at most ``passage_words`` words at sentence (or label) boundaries, then de-duplicated
across the whole corpus — exact duplicates by a hash of the case- and punctuation-folded text, near
duplicates by MinHash/LSH over word shingles verified with the exact Jaccard similarity (re-scraped catalog
copies, templated descriptions). The first occurrence is kept in a fixed source order, so the result is
deterministic.

The held-out split is by **document group** — a course, or an ESCO concept with all its languages and label
lists — chosen by a seeded hash of the group id, so no held-out passage has a translation, a label list or a
near-duplicate on the training side (de-duplication runs before the split is read, globally). Rows without
usable text are not dropped silently: they are counted per source and reason in the summary.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
import unicodedata
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings

if TYPE_CHECKING:
    from knowledge.store import KnowledgeBase

CORPUS_VERSION = 1
Split = Literal["train", "heldout"]

_TAG = re.compile(r"<[a-zA-Z/!][^<>]{0,500}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\ufeff]")
_SPACE = re.compile(r"\s+")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+(?=[\"'(\[A-ZÄÖÜ0-9•\-–])|\s+(?=[•\-–]\s)")
_FOLD = re.compile(r"[\W_]+", re.UNICODE)


class CorpusOptions(BaseModel):
    """What goes into the corpus and how it is cut; part of the corpus key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    languages: tuple[str, ...] = Field(("en", "de"), description="Languages kept; other rows are counted.")
    passage_words: int = Field(80, ge=8, description="Longest passage in words (≈128 XLM-R tokens).")
    heldout_fraction: float = Field(0.05, gt=0, lt=1, description="Share of document groups held out.")
    near_duplicate_jaccard: float = Field(
        0.8, gt=0, le=1, description="Word-shingle Jaccard at which a passage is a near-duplicate."
    )
    shingle_words: int = Field(3, ge=1)
    minhash_permutations: int = Field(64, ge=8)
    lsh_bands: int = Field(16, ge=1, description="Bands of the LSH index (permutations / bands rows each).")
    include_labels: bool = Field(True, description="Add the ESCO label lists as passages.")
    exclude_bench_queries: int = Field(
        1000,
        ge=0,
        description="Leave out of the label lists the held-out labels of `craft bench --suite linking` "
        "with this many queries per set (its default), so a linker built on the MLM encoder is not "
        "benchmarked on labels it read; 0 keeps them.",
    )
    seed: int = Field(42, description="Seeds the held-out split and the MinHash permutations.")


@dataclass(frozen=True)
class RawText:
    """One field of one source row before cleaning; ``text`` is as stored (may be NaN, None, a list …)."""

    group: str
    source: str
    field: str
    lang: object
    text: object
    title: object = None


class Passage(BaseModel):
    """One training or held-out passage of the corpus (a JSONL line)."""

    model_config = ConfigDict(frozen=True)

    id: str
    group: str
    source: str
    field: str
    lang: str
    split: Split
    text: str


class CorpusSummary(BaseModel):
    """Figures of a built corpus: what came in, what was rejected or de-duplicated, what is left."""

    key: str = Field(description="Hash of the inputs (snapshot, options, builder version): the file name.")
    hash: str = Field(description="SHA-256 of the passages themselves (text, language, split).")
    path: str
    snapshot: str
    options: CorpusOptions
    rows: int = Field(description="Source fields read (one per row, field and language).")
    documents: int = Field(description="Fields with usable text.")
    title_only: dict[str, int] = Field(description="Courses without a description (title used) per source.")
    rejected: dict[str, dict[str, int]] = Field(description="source -> reason -> rows without usable text.")
    passages_before_dedup: int
    exact_duplicates: int
    near_duplicates: int
    duplicates_by_source: dict[str, int]
    passages: int
    words: int
    passages_by_source: dict[str, dict[str, int]] = Field(description="source -> language -> passages.")
    split: dict[str, dict[str, int]] = Field(description="train|heldout -> language -> passages.")
    groups: dict[str, int] = Field(description="train|heldout -> document groups.")
    bench_labels_removed: int = Field(description="Labels left out as linking-benchmark queries.")

    @property
    def heldout_groups(self) -> int:
        return self.groups.get("heldout", 0)


# ------------------------------------------------------------------------------------------- cleaning ---


def clean_text(value: str) -> str:
    """HTML entities and tags out, NFC, no control characters, single spaces."""
    text = html.unescape(value) if "&" in value else value
    if "<" in text:
        text = _TAG.sub(" ", text)
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    return _SPACE.sub(" ", text).strip()


def fold(text: str) -> str:
    """The comparison form for de-duplication: case-folded, punctuation and spacing removed."""
    return _FOLD.sub(" ", text.casefold()).strip()


def _reason(value: object) -> str | None:
    """Why a raw value holds no text (``None`` when it does)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, str):
        return None if clean_text(value) else "empty"
    if isinstance(value, list | tuple | np.ndarray):
        return None if any(isinstance(v, str) and clean_text(v) for v in value) else "empty label list"
    return f"not text ({type(value).__name__})"


def split_units(units: Sequence[str], max_words: int) -> list[str]:
    """Greedy passages of whole units (sentences or labels) up to ``max_words``; long units are cut."""
    passages: list[str] = []
    current: list[str] = []
    size = 0
    for unit in units:
        words = unit.split()
        while len(words) > max_words:  # a unit longer than a passage: cut it at the word limit
            if current:
                passages.append(" ".join(current))
                current, size = [], 0
            passages.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if not words:
            continue
        if size + len(words) > max_words and current:
            passages.append(" ".join(current))
            current, size = [], 0
        current.append(" ".join(words))
        size += len(words)
    if current:
        passages.append(" ".join(current))
    return passages


def _document_units(raw: RawText) -> list[str]:
    """The cleaned units (sentences, or labels joined by ``;``) of a raw field that has text."""
    if isinstance(raw.text, list | tuple | np.ndarray):
        labels = [clean_text(v) for v in raw.text if isinstance(v, str)]
        labels = list(dict.fromkeys(v for v in labels if v))
        return [f"{label};" for label in labels[:-1]] + labels[-1:]
    text = clean_text(str(raw.text))
    title = clean_text(raw.title) if isinstance(raw.title, str) else ""
    if title and fold(title) != fold(text) and not fold(text).startswith(fold(title)):
        text = f"{title}: {text}"
    return [s for s in _SENTENCE.split(text) if s.strip()]


# -------------------------------------------------------------------------------------- deduplication ---


class NearDuplicates:
    """MinHash/LSH near-duplicate filter; a candidate pair counts only if its exact shingle Jaccard is high.

    Signatures: ``minhash_permutations`` universal hashes ``(a·x + b) mod p`` of the CRC32 word-shingle
    hashes, computed for all passages at once; ``lsh_bands`` bands of ``r`` rows make two passages candidates
    when a whole band agrees (probability 1 - (1 - J^r)^b: with 16 × 4 a pair at J = 0.8 is found with
    probability > 0.999). Candidates are verified with the exact Jaccard, so the filter never drops a
    passage below the threshold. Passages are visited in order and compared with the kept ones only.
    """

    _PRIME = np.uint64(4294967311)  # the first prime above 2**32
    _CHUNK = 1 << 18  # shingles per vectorized block (keeps the hash matrix near 128 MB)

    def __init__(self, options: CorpusOptions) -> None:
        if options.minhash_permutations % options.lsh_bands:
            raise ValueError(
                f"minhash_permutations ({options.minhash_permutations}) must be a multiple of lsh_bands "
                f"({options.lsh_bands})"
            )
        rng = np.random.default_rng(options.seed)
        n = options.minhash_permutations
        self._a = rng.integers(1, 2**32 - 1, size=n, dtype=np.uint64)
        self._b = rng.integers(0, 2**32 - 1, size=n, dtype=np.uint64)
        self._rows = n // options.lsh_bands
        self._bands = options.lsh_bands
        self._k = options.shingle_words
        self._threshold = options.near_duplicate_jaccard

    def shingles(self, folded: str) -> frozenset[int]:
        """CRC32 hashes of the word ``k``-grams (the whole text when it has at most ``k`` words)."""
        words = folded.split()
        k = self._k
        if len(words) <= k:
            return frozenset((zlib.crc32(" ".join(words).encode()),))
        return frozenset(zlib.crc32(" ".join(words[i : i + k]).encode()) for i in range(len(words) - k + 1))

    def signatures(self, shingle_sets: Sequence[frozenset[int]]) -> np.ndarray:
        """``(passages, permutations)`` MinHash signatures (uint32)."""
        sizes = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=len(shingle_sets))
        values = np.fromiter((h for s in shingle_sets for h in s), dtype=np.uint64, count=int(sizes.sum()))
        hashed = np.empty((len(values), len(self._a)), dtype=np.uint32)
        for start in range(0, len(values), self._CHUNK):
            block = values[start : start + self._CHUNK, None]
            hashed[start : start + len(block)] = (block * self._a + self._b) % self._PRIME
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        return np.minimum.reduceat(hashed, starts, axis=0)

    def keep(self, folded: Sequence[str]) -> list[bool]:
        """Per passage (in order): False when an earlier kept passage has Jaccard >= the threshold."""
        if not folded:
            return []
        shingle_sets = [self.shingles(text) for text in folded]
        signatures = self.signatures(shingle_sets)
        bands = [
            signatures[:, b * self._rows : (b + 1) * self._rows].copy().view(f"V{4 * self._rows}").ravel()
            for b in range(self._bands)
        ]
        buckets: list[dict[bytes, list[int]]] = [{} for _ in range(self._bands)]
        flags: list[bool] = []
        for index, shingles in enumerate(shingle_sets):
            keys = [bands[b][index].tobytes() for b in range(self._bands)]
            seen: set[int] = set()
            duplicate = False
            for b, key in enumerate(keys):
                for other in buckets[b].get(key, ()):
                    if other in seen:
                        continue
                    seen.add(other)
                    kept = shingle_sets[other]
                    if len(shingles & kept) >= self._threshold * len(shingles | kept):
                        duplicate = True
                        break
                if duplicate:
                    break
            flags.append(not duplicate)
            if not duplicate:
                for b, key in enumerate(keys):
                    buckets[b].setdefault(key, []).append(index)
        return flags


# ------------------------------------------------------------------------------------------- building ---


def heldout_groups(groups: Iterable[str], fraction: float, seed: int) -> set[str]:
    """The seeded, order-independent held-out share of the groups (a group's side never moves)."""
    limit = int(fraction * 2**32)
    chosen = set()
    for group in groups:
        value = int.from_bytes(hashlib.sha256(f"{seed}:{group}".encode()).digest()[:4], "big")
        if value < limit:
            chosen.add(group)
    return chosen


@dataclass
class _Counts:
    rows: int = 0
    documents: int = 0
    before: int = 0
    exact: int = 0
    near: int = 0

    def __post_init__(self) -> None:
        self.rejected: dict[str, Counter[str]] = defaultdict(Counter)
        self.title_only: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()


def build_passages(raws: Iterable[RawText], options: CorpusOptions) -> tuple[list[Passage], dict[str, Any]]:
    """Clean, split, de-duplicate and assign splits; returns the passages and the counts for the summary."""
    counts = _Counts()
    exact: set[str] = set()
    unique: list[tuple[RawText, str, str, str]] = []
    for raw in raws:
        counts.rows += 1
        reason = _reason(raw.text)
        text_missing = reason is not None
        if text_missing and raw.field == "course" and _reason(raw.title) is None:
            raw = RawText(raw.group, raw.source, raw.field, raw.lang, raw.title)  # title-only course
            counts.title_only[raw.source] += 1
            reason = None
        if reason is not None:
            counts.rejected[raw.source][reason] += 1
            continue
        lang = raw.lang if isinstance(raw.lang, str) else ""
        if lang not in options.languages:
            counts.rejected[raw.source][
                f"language {lang or 'unknown'} not in {'/'.join(options.languages)}"
            ] += 1
            continue
        units = _document_units(raw)
        if raw.field == "labels" and len(units) < 2:
            counts.rejected[raw.source][
                "label list of the preferred label alone (leads the description)"
            ] += 1
            continue
        if not units:
            counts.rejected[raw.source]["empty"] += 1
            continue
        counts.documents += 1
        for text in split_units(units, options.passage_words):
            counts.before += 1
            folded = fold(text)
            if not folded:
                counts.rejected[raw.source]["no letters or digits"] += 1
                continue
            digest_ = hashlib.sha1(folded.encode()).hexdigest()
            if digest_ in exact:
                counts.exact += 1
                counts.duplicates[raw.source] += 1
                continue
            exact.add(digest_)
            unique.append((raw, lang, text, folded))

    kept: list[tuple[RawText, str, str]] = []
    for (raw, lang, text, _), keep in zip(
        unique, NearDuplicates(options).keep([f for *_, f in unique]), strict=True
    ):
        if keep:
            kept.append((raw, lang, text))
        else:
            counts.near += 1
            counts.duplicates[raw.source] += 1

    held = heldout_groups({raw.group for raw, _, _ in kept}, options.heldout_fraction, options.seed)
    passages: list[Passage] = []
    per_doc: Counter[tuple[str, str, str]] = Counter()
    for raw, lang, text in kept:
        doc = (raw.group, raw.field, lang)
        per_doc[doc] += 1
        passages.append(
            Passage(
                id=f"{raw.group}|{raw.field}|{lang}|{per_doc[doc]}",
                group=raw.group,
                source=raw.source,
                field=raw.field,
                lang=lang,
                split="heldout" if raw.group in held else "train",
                text=text,
            )
        )
    stats = {
        "rows": counts.rows,
        "documents": counts.documents,
        "title_only": dict(sorted(counts.title_only.items())),
        "rejected": {s: dict(sorted(r.items())) for s, r in sorted(counts.rejected.items())},
        "passages_before_dedup": counts.before,
        "exact_duplicates": counts.exact,
        "near_duplicates": counts.near,
        "duplicates_by_source": dict(sorted(counts.duplicates.items())),
    }
    return passages, stats


def knowledge_texts(
    kb: KnowledgeBase, *, include_labels: bool = True, exclude: set[tuple[str, str]] | None = None
) -> Iterator[RawText]:
    """Every text field of the snapshot in a fixed order: ESCO occupations, skills, then the courses.

    ``exclude`` holds ``(uri, normalized label)`` pairs left out of the label lists (benchmark queries).
    """
    from knowledge.text import normalize

    exclude = exclude or set()
    for kind, table in (("occupation", "occupations"), ("skill", "skills")):
        frame = kb.table(table).sort_values("uri")
        columns = set(frame.columns)
        for row in frame.itertuples(index=False):
            for lang in ("en", "de"):
                pref = getattr(row, f"pref_{lang}", None)
                description = getattr(row, f"desc_{lang}", None)
                yield RawText(row.uri, f"esco:{kind}", "description", lang, description, pref)
                if include_labels and f"alt_{lang}" in columns:
                    alts = getattr(row, f"alt_{lang}")
                    labels = [pref] if isinstance(pref, str) else []
                    if isinstance(alts, list | tuple | np.ndarray):
                        labels += [a for a in alts if isinstance(a, str)]
                    if exclude:
                        labels = [a for a in labels if (row.uri, normalize(a)) not in exclude]
                    yield RawText(row.uri, f"esco:{kind}", "labels", lang, labels)
    courses = kb.courses.sort_values(["source", "id"])
    for row in courses.itertuples(index=False):
        yield RawText(row.id, f"course:{row.source}", "course", row.language, row.description, row.title)


def bench_label_keys(kb: KnowledgeBase, queries: int) -> set[tuple[str, str]]:
    """``(uri, normalized label)`` of the linking benchmark's held-out labels (and their gender forms)."""
    if not queries:
        return set()
    from evaluation.linking import query_sets, removal_keys

    return set().union(*(removal_keys(q) for q in query_sets(kb.labels, queries).values()))


def _summarize(
    passages: list[Passage],
    stats: dict[str, Any],
    options: CorpusOptions,
    key: str,
    path: Path,
    snapshot: str,
) -> CorpusSummary:
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    by_split: dict[str, Counter[str]] = defaultdict(Counter)
    groups: dict[str, set[str]] = defaultdict(set)
    for p in passages:
        by_source[p.source][p.lang] += 1
        by_split[p.split][p.lang] += 1
        groups[p.split].add(p.group)
    return CorpusSummary(
        key=key,
        hash=passages_hash(passages),
        path=str(path),
        snapshot=snapshot,
        options=options,
        passages=len(passages),
        words=sum(len(p.text.split()) for p in passages),
        passages_by_source={s: dict(sorted(c.items())) for s, c in sorted(by_source.items())},
        split={s: dict(sorted(c.items())) for s, c in sorted(by_split.items())},
        groups={s: len(g) for s, g in sorted(groups.items())},
        **stats,
    )


def passages_hash(passages: Sequence[Passage]) -> str:
    digest_ = hashlib.sha256()
    for p in passages:
        digest_.update(f"{p.id}\x1f{p.lang}\x1f{p.split}\x1f{p.text}\n".encode())
    return digest_.hexdigest()


def corpus_key(snapshot: str, options: CorpusOptions) -> str:
    raw = json.dumps(
        {"version": CORPUS_VERSION, "snapshot": snapshot, "options": options.model_dump(mode="json")},
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def build_corpus(
    settings: Settings, options: CorpusOptions | None = None, *, rebuild: bool = False
) -> tuple[CorpusSummary, list[Passage]]:
    """The corpus of the current snapshot: read from ``<cache_dir>/corpus/`` when built before, else built.

    Files: ``corpus-<key>.jsonl`` (one ``Passage`` per line) and ``corpus-<key>.summary.json``; the key
    hashes the snapshot version, the options and the builder version, so any change builds a new corpus.
    """
    from knowledge.store import get_knowledge

    options = options or CorpusOptions(languages=tuple(settings.languages))
    kb = get_knowledge(settings)
    key = corpus_key(kb.manifest.version, options)
    folder = settings.cache_dir / "corpus"
    path = folder / f"corpus-{key}.jsonl"
    summary_path = path.with_suffix(".summary.json")
    if not rebuild and path.is_file() and summary_path.is_file():
        summary = CorpusSummary.model_validate_json(summary_path.read_text())
        passages = load_passages(path)
        if passages_hash(passages) == summary.hash:
            return summary, passages
    exclude = bench_label_keys(kb, options.exclude_bench_queries)
    removed = _count_excluded(kb, exclude) if options.include_labels else 0
    texts = knowledge_texts(kb, include_labels=options.include_labels, exclude=exclude)
    passages, stats = build_passages(texts, options)
    stats["bench_labels_removed"] = removed
    if not passages:
        raise ValueError(
            f"the knowledge snapshot {kb.manifest.version} yields no corpus text: {stats['rejected']}"
        )
    summary = _summarize(passages, stats, options, key, path, kb.manifest.version)
    folder.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    with staging.open("w", encoding="utf-8") as handle:
        for p in passages:
            handle.write(p.model_dump_json() + "\n")
    staging.replace(path)
    summary_path.write_text(summary.model_dump_json(indent=2))
    return summary, passages


def _count_excluded(kb: KnowledgeBase, exclude: set[tuple[str, str]]) -> int:
    """ESCO preferred/alternative labels (EN, DE) that ``exclude`` takes out of the label lists."""
    labels = kb.labels
    rows = labels[labels.label_type.isin(["pref", "alt"]) & labels.lang.isin(["en", "de"])]
    return sum((u, n) in exclude for u, n in zip(rows.uri, rows.norm, strict=True))


def load_passages(path: Path) -> list[Passage]:
    """The passages of a corpus JSONL file; a malformed line is an error naming its line number."""
    passages = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                passages.append(Passage.model_validate_json(line))
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not a corpus passage: {error}") from error
    return passages
