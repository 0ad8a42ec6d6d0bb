"""Random and popularity baselines honour the filters, are deterministic and return catalog ids only."""

from __future__ import annotations

import pandas as pd

from evaluation.baselines import PopularityRetriever, RandomRetriever
from tools.retrieval.base import Filters, RetrievalQuery


def query(uri: str = "occ1", **filters: object) -> RetrievalQuery:
    return RetrievalQuery(occupation_uri=uri, filters=Filters(**filters))


def test_random_is_seeded_per_query_and_filtered(courses: pd.DataFrame) -> None:
    retriever = RandomRetriever(courses, seed=42)
    first = retriever.retrieve(query(), k=3)
    assert [c.course_id for c in first] == [
        c.course_id for c in RandomRetriever(courses, 42).retrieve(query(), 3)
    ]
    assert len({c.course_id for c in first}) == 3
    described = set(courses.id[courses.has_description])
    assert {c.course_id for c in retriever.retrieve(query(), k=50)} == described  # title-only excluded
    german = retriever.retrieve(query(languages=["de"]), k=5)
    assert [c.course_id for c in german] == ["arbeitsagentur:1"]
    assert retriever.retrieve(query(sources=["nowhere"]), k=5) == []


def test_popularity_ranks_widely_listed_courses_first(courses: pd.DataFrame) -> None:
    retriever = PopularityRetriever(courses)
    ranked = [c.course_id for c in retriever.retrieve(query(), k=10)]
    assert ranked[:2] == ["coursera:2", "udemy:3"]  # listed in 3 and in 2 catalogs
    assert ranked == [c.course_id for c in retriever.retrieve(query("another occupation"), k=10)]
    assert "udemy_list:1" not in ranked
    assert [c.course_id for c in retriever.retrieve(query(free_only=True), k=10)] == ["coursera:1"]
    cheap = [c.course_id for c in retriever.retrieve(query(price_max=25.0), k=10)]
    assert set(cheap) == {"coursera:1", "udemy:1"}
