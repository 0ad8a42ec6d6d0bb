"""Entity linking of free text to ESCO concepts: exact/alias, fuzzy (rapidfuzz) and dense (ChromaDB) signals.

Each signal gives a per-URI score in [0, 1]; an exact alias match scores 1, otherwise the fused score leans on
the stronger of fuzzy and dense (``lead``) and agreement of the two adds the rest. The weights and
the dense floor were chosen on a development split of held-out ESCO alternative labels (not the test split).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from knowledge.abbreviations import expand
from knowledge.encoders import Encoder
from knowledge.text import normalize
from knowledge.vectors import LabelIndex


@dataclass(frozen=True)
class LinkWeights:
    """Fusion parameters, tuned on a development split of held-out labels.

    ``dense_floor`` is the cosine below which e5 similarity carries no signal; the fused score leans on the
    stronger of the two signals (``lead``) so one convincing signal suffices and agreement adds the rest.
    """

    lead: float = 0.75
    dense_floor: float = 0.80
    fuzzy_cutoff: float = 60.0
    min_score: float = 0.5
    hint_score: float = 0.5
    max_token_df: int = 3000

    @classmethod
    def for_encoder(cls, encoder: Encoder | None) -> LinkWeights:
        """The defaults with the dense floor moved onto ``encoder``'s cosine scale: a fine-tuned linker
        (``craft train linker``) spreads cosines far wider than the base e5 the floor was tuned on."""
        weights = cls()
        if encoder is None:
            return weights
        return replace(weights, dense_floor=round(encoder.from_base_cosine(weights.dense_floor), 4))


@dataclass
class Match:
    """One linked concept with the evidence that produced it."""

    uri: str
    score: float
    matched_label: str
    signal: str
    signals: dict[str, float] = field(default_factory=dict)


class Linker:
    """Links text to the concepts of one kind; built over a label table so benchmarks can hold labels out."""

    def __init__(
        self,
        labels: pd.DataFrame,
        *,
        index: LabelIndex | None = None,
        encoder: Encoder | None = None,
        hints: pd.DataFrame | None = None,
        weights: LinkWeights | None = None,
    ) -> None:
        self.weights = weights or LinkWeights.for_encoder(encoder or (index.encoder if index else None))
        self.index, self.encoder = index, encoder
        by_norm: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for norm, uri, label in zip(labels.norm, labels.uri, labels.label, strict=True):
            by_norm[norm].append((uri, label))
        self._by_norm = dict(by_norm)
        self._norms = list(self._by_norm)
        postings: dict[str, list[int]] = defaultdict(list)
        for position, norm in enumerate(self._norms):
            for token in set(norm.split()):
                postings[token].append(position)
        self._postings = dict(postings)
        self._hints: dict[str, list[str]] = {}
        if hints is not None and len(hints):
            for norm, uris in zip(hints.norm, hints.esco_uris, strict=True):
                self._hints.setdefault(norm, list(uris))
        self._hint_norms = list(self._hints)

    def _exact(self, norm: str) -> dict[str, tuple[float, str]]:
        return {uri: (1.0, label) for uri, label in self._by_norm.get(norm, [])}

    def _fuzzy(self, norm: str, limit: int) -> dict[str, tuple[float, str]]:
        """Character similarity over all labels (typos, plurals) plus token-set similarity over the labels
        sharing a word with the query (word order, extra words); the second is restricted for speed."""
        cutoff = self.weights.fuzzy_cutoff
        scored: dict[str, float] = {}
        for choice, score, _ in process.extract(
            norm, self._norms, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff
        ):
            scored[choice] = score
        shared: set[int] = set()
        for token in set(norm.split()):
            positions = self._postings.get(token, [])
            if len(positions) <= self.weights.max_token_df:
                shared.update(positions)
        if shared:
            pool = [self._norms[i] for i in shared]
            for choice, score, _ in process.extract(
                norm, pool, scorer=fuzz.token_set_ratio, limit=limit, score_cutoff=cutoff
            ):
                # token_set_ratio is 100 for any subset; scale by length ratio so "nurse" ≠ "nurse assistant".
                ratio = min(len(norm), len(choice)) / max(len(norm), len(choice))
                scored[choice] = max(scored.get(choice, 0.0), score * (0.7 + 0.3 * ratio))
        out: dict[str, tuple[float, str]] = {}
        for choice, score in scored.items():
            for uri, label in self._by_norm[choice]:
                if score / 100.0 > out.get(uri, (0.0, ""))[0]:
                    out[uri] = (score / 100.0, label)
        return out

    def _dense(self, vector: np.ndarray | None, limit: int) -> dict[str, tuple[float, str]]:
        if vector is None or self.index is None:
            return {}
        floor = self.weights.dense_floor
        out: dict[str, tuple[float, str]] = {}
        for hit in self.index.search(vector, k=limit):
            value = max(0.0, (hit.score - floor) / (1.0 - floor))
            if value > out.get(hit.uri, (0.0, ""))[0]:
                out[hit.uri] = (value, hit.label)
        return out

    def _hint_uris(self, norm: str) -> list[str]:
        if norm in self._hints:
            return self._hints[norm]
        best = (
            process.extractOne(norm, self._hint_norms, scorer=fuzz.ratio, score_cutoff=92)
            if self._hints
            else None
        )
        return self._hints[best[0]] if best else []

    def link(self, text: str, k: int = 10, *, vector: np.ndarray | None = None) -> list[Match]:
        """Top-k concepts for ``text``; empty when nothing clears ``min_score`` (nonsense stays unlinked)."""
        norm = normalize(text)
        if not norm:
            return []
        exact = self._exact(norm)
        fuzzy = self._fuzzy(norm, limit=max(30, 3 * k))
        expanded = expand(text)
        if expanded:
            for uri, value in self._exact(normalize(expanded)).items():
                exact.setdefault(uri, value)
            for uri, value in self._fuzzy(normalize(expanded), limit=max(30, 3 * k)).items():
                if value[0] > fuzzy.get(uri, (0.0, ""))[0]:
                    fuzzy[uri] = value
        if vector is None and self.encoder is not None and self.index is not None:
            vector = self.encoder.encode([expanded or text])[0]
        dense = self._dense(vector, limit=max(40, 4 * k))
        weights = self.weights
        matches: list[Match] = []
        for uri in set(exact) | set(fuzzy) | set(dense):
            f, d = fuzzy.get(uri, (0.0, ""))[0], dense.get(uri, (0.0, ""))[0]
            fused = weights.lead * max(f, d) + (1.0 - weights.lead) * min(f, d)
            score, signal = (1.0, "exact") if uri in exact else (fused, "fuzzy" if f >= d else "dense")
            label = (exact.get(uri) or max(fuzzy.get(uri, (0.0, "")), dense.get(uri, (0.0, ""))))[1]
            matches.append(Match(uri, score, label, signal, {"fuzzy": round(f, 4), "dense": round(d, 4)}))
        if not any(m.score >= 0.9 for m in matches):
            # A BA title naming several ESCO occupations narrows the choice; it never outranks a clear match.
            by_uri = {m.uri: m for m in matches}
            for uri in self._hint_uris(norm):
                known = by_uri.get(uri)
                boosted = weights.hint_score + 0.4 * (known.signals.get("dense", 0.0) if known else 0.0)
                if known is None:
                    matches.append(Match(uri, boosted, text, "ba_hint"))
                elif known.score < boosted:
                    known.score, known.signal = boosted, "ba_hint"
        matches = [m for m in matches if m.score >= weights.min_score]
        matches.sort(key=lambda m: (-m.score, m.uri))
        return matches[:k]
