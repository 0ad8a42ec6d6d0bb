"""Lexical baselines over the course corpus: BM25 (bm25s) and TF-IDF cosine (scikit-learn)."""

from __future__ import annotations

import numpy as np
from bm25s import BM25
from bm25s import tokenize as bm25_tokenize
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_GERMAN
from sklearn.feature_extraction.text import TfidfVectorizer

from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus

STOPWORDS = sorted(set(STOPWORDS_EN) | set(STOPWORDS_GERMAN))


def top_k(scores: np.ndarray, mask: np.ndarray, ids: list[str], k: int) -> list[ScoredCourse]:
    """Best ``k`` among allowed rows with a positive score; ties broken by catalog order (deterministic)."""
    scores = np.where(mask, scores, -np.inf)
    allowed = int(np.count_nonzero(mask & (scores > 0)))
    if allowed == 0:
        return []
    k = min(k, allowed)
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.lexsort((best, -scores[best]))]
    return [ScoredCourse(course_id=ids[i], score=float(scores[i])) for i in best]


class BM25Retriever(Retriever):
    name = "bm25"

    def __init__(self, corpus: CourseCorpus, k1: float = 1.5, b: float = 0.75) -> None:
        self.corpus = corpus
        self.model = BM25(k1=k1, b=b)
        tokens = bm25_tokenize(corpus.texts, stopwords=STOPWORDS, show_progress=False)
        self.model.index(tokens, show_progress=False)

    def scores(self, text: str) -> np.ndarray:
        tokens = bm25_tokenize([text], stopwords=STOPWORDS, show_progress=False, return_ids=False)[0]
        if not tokens:
            return np.zeros(len(self.corpus.ids), dtype=np.float32)
        return self.model.get_scores(tokens)

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        return top_k(self.scores(query.text), self.corpus.mask(query.filters), self.corpus.ids, k)


class TfidfRetriever(Retriever):
    name = "tfidf"

    def __init__(self, corpus: CourseCorpus) -> None:
        self.corpus = corpus
        self.vectorizer = TfidfVectorizer(stop_words=STOPWORDS, sublinear_tf=True, min_df=1)
        self.matrix = self.vectorizer.fit_transform(corpus.texts)

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        vector = self.vectorizer.transform([query.text])
        scores = np.asarray((self.matrix @ vector.T).todense()).ravel()
        return top_k(scores, self.corpus.mask(query.filters), self.corpus.ids, k)
