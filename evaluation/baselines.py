"""Floor baselines every retriever must beat: random and query-independent popularity.

Popularity: the snapshot's course records keep no enrollment, subscriber or rating figure (the ``Course``
schema has no such field), so popularity is approximated by how many catalogs list the course (1 + the
duplicates merged into it, ``also_in``), then whether it has a description. This is a weak proxy: about 95%
of the catalog is listed once, so within that tier the order is the catalog (id) order. It is kept because
a query-independent ranking shows how much of a metric a system gets without reading the query at all.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from knowledge.store import KnowledgeBase
from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.filters import apply_filters


def _table(courses: pd.DataFrame | KnowledgeBase) -> pd.DataFrame:
    frame = courses.courses if isinstance(courses, KnowledgeBase) else courses
    return frame.reset_index(drop=True)


class RandomRetriever(Retriever):
    """k allowed courses drawn uniformly; the draw depends only on (seed, query), not on call order."""

    name = "random"

    def __init__(self, courses: pd.DataFrame | KnowledgeBase, seed: int = 42) -> None:
        self.courses = _table(courses)
        self.ids = self.courses.id.to_numpy()
        self.seed = seed

    def _rng(self, query: RetrievalQuery) -> np.random.Generator:
        key = query.occupation_uri or query.text
        digest = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big")
        return np.random.default_rng([self.seed, digest])

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        allowed = np.flatnonzero(apply_filters(self.courses, query.filters))
        if len(allowed) == 0 or k <= 0:
            return []
        chosen = self._rng(query).choice(allowed, size=min(k, len(allowed)), replace=False)
        return [
            ScoredCourse(course_id=str(self.ids[i]), score=float(k - rank)) for rank, i in enumerate(chosen)
        ]


class PopularityRetriever(Retriever):
    """The same list for every query: most widely listed courses first (see the module docstring)."""

    name = "popularity"

    def __init__(self, courses: pd.DataFrame | KnowledgeBase) -> None:
        self.courses = _table(courses)
        listed = 1 + self.courses.also_in.map(lambda ids: 0 if ids is None else len(ids)).to_numpy()
        described = self.courses.has_description.to_numpy(dtype=bool)
        self.popularity = listed + 0.5 * described
        ids = self.courses.id.to_numpy()
        # Highest popularity first, ties by course id: deterministic across rebuilds of the same catalog.
        self.order = np.lexsort((ids, -self.popularity))
        self.ids = ids

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        if k <= 0:
            return []
        mask = apply_filters(self.courses, query.filters)
        best = self.order[mask[self.order]][:k]
        return [ScoredCourse(course_id=str(self.ids[i]), score=float(self.popularity[i])) for i in best]
