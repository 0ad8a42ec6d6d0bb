"""Hybrid retrieval by reciprocal-rank fusion: robust to the different score scales of BM25 and cosine."""

from __future__ import annotations

from collections import defaultdict

from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse

RRF_K = 60


class HybridRetriever(Retriever):
    name = "hybrid"

    def __init__(self, retrievers: list[Retriever], depth: int = 100, rrf_k: int = RRF_K) -> None:
        self.retrievers, self.depth, self.rrf_k = retrievers, depth, rrf_k

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        fused: dict[str, float] = defaultdict(float)
        for retriever in self.retrievers:
            for rank, hit in enumerate(retriever.retrieve(query, self.depth), start=1):
                fused[hit.course_id] += 1.0 / (self.rrf_k + rank)
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [ScoredCourse(course_id=cid, score=score) for cid, score in ranked]
