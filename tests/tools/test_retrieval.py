"""Retrieval systems on a tiny hand-made catalog: filters are hard, fusion is deterministic, ANN = exact."""

from __future__ import annotations

from pathlib import Path

import chromadb
import numpy as np
import pandas as pd
import pytest
from retrieval_fakes import HashingEncoder, course

from knowledge.encoders import VectorCache
from tools.retrieval.base import Filters, RetrievalQuery
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.dense import DenseRetriever
from tools.retrieval.filters import apply_filters, default_languages
from tools.retrieval.hybrid import HybridRetriever
from tools.retrieval.lexical import BM25Retriever, TfidfRetriever


@pytest.fixture
def corpus() -> CourseCorpus:
    return CourseCorpus(
        pd.DataFrame(
            [
                course(
                    "c1", "SQL for data analysis", "Learn SQL queries, joins and data analysis.", free=True
                ),
                course(
                    "c2",
                    "Advanced SQL",
                    "Window functions and SQL performance.",
                    level="advanced",
                    price=99.0,
                ),
                course("c3", "Excel basics", "Spreadsheets, formulas and charts.", price=20.0),
                course("c4", "Datenanalyse mit SQL", "SQL Abfragen für die Datenanalyse.", language="de"),
                course("c5", "Baking bread", "Sourdough and yeast doughs.", free=True),
                course("c6", "SQL title only", None),
            ]
        )
    )


def query(text: str, **filters: object) -> RetrievalQuery:
    return RetrievalQuery(text=text, filters=Filters(**filters))


def test_filters_are_hard(corpus: CourseCorpus) -> None:
    frame = corpus.courses
    assert list(frame.id[apply_filters(frame, Filters())]) == ["c1", "c2", "c3", "c4", "c5"]
    assert list(frame.id[apply_filters(frame, Filters(require_description=False))])[-1] == "c6"
    assert list(frame.id[apply_filters(frame, Filters(free_only=True))]) == ["c1", "c5"]
    assert list(frame.id[apply_filters(frame, Filters(price_max=50))]) == ["c1", "c3", "c5"]
    assert list(frame.id[apply_filters(frame, Filters(languages=["de"]))]) == ["c4"]
    assert list(frame.id[apply_filters(frame, Filters(levels=["advanced"]))]) == ["c2"]
    assert default_languages("de") == ["de", "en"] and default_languages("en") == ["en"]


@pytest.mark.parametrize("system", [BM25Retriever, TfidfRetriever])
def test_lexical_ranks_by_overlap_and_respects_filters(corpus: CourseCorpus, system: type) -> None:
    retriever = system(corpus)
    hits = retriever.retrieve(query("SQL data analysis"), k=3)
    assert hits[0].course_id == "c1"
    assert "c6" not in [h.course_id for h in retriever.retrieve(query("SQL"), k=10)]
    only_free = retriever.retrieve(query("SQL", free_only=True), k=10)
    assert [h.course_id for h in only_free] == ["c1"]  # fewer than k: never padded


def test_lexical_empty_query(corpus: CourseCorpus) -> None:
    assert BM25Retriever(corpus).retrieve(query("the and of"), k=5) == []


def test_dense_exact_and_ann_agree(corpus: CourseCorpus, tmp_path: Path) -> None:
    encoder = HashingEncoder()
    cache = VectorCache(tmp_path / "v.sqlite", encoder)
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    ann = DenseRetriever(corpus, encoder, cache, client=client, collection="courses-test")
    exact = DenseRetriever(corpus, encoder, cache, exact=True)
    q = query("sql data analysis")
    assert [h.course_id for h in ann.retrieve(q, 3)] == [h.course_id for h in exact.retrieve(q, 3)]
    assert ann.collection is not None and ann.collection.count() == 5  # title-only course not indexed


def test_primed_queries_retrieve_exactly_as_unprimed(corpus: CourseCorpus, tmp_path: Path) -> None:
    encoder = HashingEncoder()
    dense = DenseRetriever(corpus, encoder, VectorCache(tmp_path / "v.sqlite", encoder), exact=True)
    queries = [query("sql data analysis"), query("pivot tables"), query("sql data analysis")]
    before = [dense.retrieve(q, 4) for q in queries]
    calls: list[int] = []
    original = encoder.encode

    def counting(texts: list[str], **kwargs: object) -> np.ndarray:
        calls.append(len(texts))
        return original(texts, **kwargs)  # type: ignore[arg-type]

    encoder.encode = counting  # type: ignore[method-assign]
    dense.prime(queries, batch_size=64)
    assert len(calls) == 1  # every distinct view text in one batch
    assert [dense.retrieve(q, 4) for q in queries] == before
    assert len(calls) == 1  # served from the primed vectors
    dense.retrieve(query("something else"), 2)
    assert len(calls) == 2  # an unprimed query is encoded as before


def test_dense_sync_is_incremental(corpus: CourseCorpus, tmp_path: Path) -> None:
    encoder = HashingEncoder()
    cache = VectorCache(tmp_path / "v.sqlite", encoder)
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    DenseRetriever(corpus, encoder, cache, client=client, collection="courses-inc")
    changed = corpus.courses.copy()
    changed.loc[changed.id == "c3", "description"] = "Pivot tables."
    changed = changed[changed.id != "c5"].reset_index(drop=True)
    again = DenseRetriever(CourseCorpus(changed), encoder, cache, client=client, collection="courses-inc")
    stored = again.collection.get(include=["metadatas"])  # type: ignore[union-attr]
    assert sorted(stored["ids"]) == ["c1", "c2", "c3", "c4"]


def test_hybrid_rrf_is_deterministic(corpus: CourseCorpus) -> None:
    hybrid = HybridRetriever([BM25Retriever(corpus), TfidfRetriever(corpus)], depth=10)
    first = hybrid.retrieve(query("SQL data analysis"), 4)
    assert first == hybrid.retrieve(query("SQL data analysis"), 4)
    assert first[0].course_id == "c1"


def test_coverage_rerank_prefers_new_gap_skills() -> None:
    from tools.retrieval.base import GapSkill, ScoredCourse
    from tools.retrieval.diversity import coverage_rerank

    hits = [ScoredCourse(course_id=c, score=s) for c, s in [("a", 1.0), ("a2", 0.99), ("b", 0.6)]]
    skills = {"a": {"sql"}, "a2": {"sql"}, "b": {"excel"}}
    gap = [
        GapSkill(uri="sql", label="SQL", essential=True),
        GapSkill(uri="excel", label="Excel", essential=True),
    ]
    assert [h.course_id for h in coverage_rerank(hits, skills, gap, 2)] == ["a", "b"]


def test_mmr_skips_near_duplicates() -> None:
    from tools.retrieval.base import ScoredCourse
    from tools.retrieval.diversity import mmr

    hits = [ScoredCourse(course_id=c, score=s) for c, s in [("a", 1.0), ("a2", 0.95), ("b", 0.5)]]
    vectors = {"a": np.array([1.0, 0.0]), "a2": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    assert [h.course_id for h in mmr(hits, vectors, 2, lambda_=0.5)] == ["a", "b"]
