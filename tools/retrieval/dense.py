"""Dense course retrieval: a ChromaDB ``courses`` collection (HNSW, cosine) kept in sync by content hash, and
an exact NumPy path for small catalogs and for measuring the ANN recall.

Cross-lingual by construction: the multilingual e5 encoder puts German queries and English courses (and the
reverse) in one space, so the language filter — not the encoder — decides what languages are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from chromadb.api import ClientAPI

from knowledge.encoders import Encoder, VectorCache
from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.lexical import top_k

UPSERT_BATCH = 2048
ANN_OVERFETCH = 4
EF_SEARCH = 200
# cosine space; ef 200 at build and search keeps recall@10 vs exact ≈ 1 on a catalog of ~10^4 courses
HNSW = {"hnsw": {"space": "cosine", "ef_construction": 200, "ef_search": EF_SEARCH}}
View = Literal["profile", "occupation"]
VIEWS: tuple[View, ...] = ("profile", "occupation")


def view_text(query: RetrievalQuery, view: View) -> str:
    """``profile``: the builder's text (occupation + missing skills); ``occupation``: label + description.

    The profile view carries the gap (skills the user has are absent from it); the occupation view anchors the
    search on what the job is about, which a keyword list of 40 skills dilutes. The two vectors are summed.
    """
    if view == "profile":
        return query.text
    return ". ".join(p for p in (query.occupation_label, query.occupation_description) if p) or query.text


class DenseRetriever(Retriever):
    """``exact=True`` scores every course with a matrix product; otherwise Chroma's HNSW answers."""

    name = "dense"

    def __init__(
        self,
        corpus: CourseCorpus,
        encoder: Encoder,
        cache: VectorCache,
        *,
        client: ClientAPI | None = None,
        collection: str = "courses",
        exact: bool = False,
        views: tuple[View, ...] = ("profile",),
        name: str = "dense",
        only: set[str] | None = None,
        progress: str | None = None,
    ) -> None:
        """``only``: index just these course ids (the CI sample); every described course otherwise."""
        if not views:
            raise ValueError("at least one query view is needed")
        self.corpus, self.encoder, self.exact, self.views, self.name = corpus, encoder, exact, views, name
        self._primed: dict[tuple[str, ...], np.ndarray] = {}
        rows = [
            i
            for i, described in enumerate(corpus.courses.has_description)
            if described and (only is None or corpus.ids[i] in only)
        ]
        self.rows = np.array(rows, dtype=np.int64)
        texts = [corpus.texts[i] for i in rows]
        self.vectors = cache.encode(texts, query=False, progress=progress)
        self.collection = None
        if client is not None:
            metadata = {"encoder": encoder.identity}
            self.collection = client.get_or_create_collection(
                name=collection, configuration=HNSW, metadata=metadata, embedding_function=None
            )
            built_by = (self.collection.metadata or {}).get("encoder")
            if built_by is not None and built_by != encoder.identity:
                # same collection name, other weights (a model retrained under its name): never mix the two
                client.delete_collection(collection)
                self.collection = client.create_collection(
                    name=collection, configuration=HNSW, metadata=metadata, embedding_function=None
                )
            hnsw = (self.collection.configuration or {}).get("hnsw") or {}
            if hnsw.get("ef_search") != EF_SEARCH:  # older collections: ef_search is mutable
                self.collection.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
            self._sync(rows)

    def _sync(self, rows: list[int]) -> None:
        """Upsert courses whose content hash changed and delete those no longer in the catalog."""
        assert self.collection is not None
        wanted = {self.corpus.ids[i]: self.corpus.hashes[i] for i in rows}
        present = self.collection.get(include=["metadatas"])
        stored = {
            cid: (meta or {}).get("hash")
            for cid, meta in zip(present["ids"], present["metadatas"], strict=True)
        }
        stale = [cid for cid in stored if cid not in wanted]
        if stale:
            self.collection.delete(ids=stale)
        todo = [j for j, i in enumerate(rows) if stored.get(self.corpus.ids[i]) != self.corpus.hashes[i]]
        for start in range(0, len(todo), UPSERT_BATCH):
            part = todo[start : start + UPSERT_BATCH]
            self.collection.upsert(
                ids=[self.corpus.ids[rows[j]] for j in part],
                embeddings=self.vectors[part],
                metadatas=[{"hash": self.corpus.hashes[rows[j]]} for j in part],
            )

    def scores_exact(self, vector: np.ndarray) -> np.ndarray:
        scores = np.full(len(self.corpus.ids), -np.inf, dtype=np.float32)
        scores[self.rows] = self.vectors @ vector
        return scores

    def scores_ann(self, vector: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
        assert self.collection is not None
        scores = np.full(len(self.corpus.ids), -np.inf, dtype=np.float32)
        n = min(self.collection.count(), max(k * ANN_OVERFETCH, 50))
        allowed_share = max(mask[self.rows].mean(), 1e-3) if len(self.rows) else 1.0
        n = min(self.collection.count(), int(n / allowed_share))  # filters are applied after the ANN search
        if n == 0:
            return scores
        result = self.collection.query(query_embeddings=[vector.tolist()], n_results=n, include=["distances"])
        for cid, distance in zip(result["ids"][0], result["distances"][0], strict=True):
            scores[self.corpus.position[cid]] = 1.0 - distance
        return scores

    def query_vector(self, query: RetrievalQuery) -> np.ndarray:
        """One batched encoder call for all views; the unit vectors are summed and re-normalized."""
        texts = tuple(dict.fromkeys(view_text(query, view) for view in self.views))
        primed = self._primed.get(texts)
        if primed is not None:
            return primed
        summed = self.encoder.encode(list(texts), query=True).sum(axis=0)
        return summed / max(float(np.linalg.norm(summed)), 1e-12)

    def prime(self, queries: Sequence[RetrievalQuery], batch_size: int = 64) -> None:
        """Encode many queries' views in large batches ahead of ``retrieve`` (offline work: training pairs,
        evaluation), several times faster than one call per query on a CPU; replaces earlier primed ones."""
        views = [tuple(dict.fromkeys(view_text(q, v) for v in self.views)) for q in queries]
        unique = list(dict.fromkeys(t for texts in views for t in texts))
        encoded: dict[str, np.ndarray] = {}
        for start in range(0, len(unique), batch_size):
            chunk = unique[start : start + batch_size]
            encoded.update(zip(chunk, self.encoder.encode(chunk, query=True), strict=True))
        self._primed = {}
        for texts in views:
            summed = np.sum([encoded[t] for t in texts], axis=0)
            self._primed[texts] = summed / max(float(np.linalg.norm(summed)), 1e-12)

    def scores(self, query: RetrievalQuery, mask: np.ndarray, k: int) -> np.ndarray:
        vector = self.query_vector(query)
        if self.exact or self.collection is None:
            return self.scores_exact(vector)
        return self.scores_ann(vector, mask, k)

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        mask = self.corpus.mask(query.filters)
        scores = self.scores(query, mask, k)
        # cosine can be negative; shift so top_k's "positive score" rule only drops unscored rows
        return top_k(np.where(np.isfinite(scores), scores + 2.0, 0.0), mask, self.corpus.ids, k)
