"""The retrieval benchmark's measurements on tiny inputs: ANN recall against exact, and throughput figures
that come from real encoder calls (the full run is `craft bench --suite retrieval`)."""

from __future__ import annotations

from pathlib import Path

import chromadb
import pandas as pd
import pytest
from retrieval_fakes import HashingEncoder, course

from craft.settings import get_settings
from evaluation.retrieval_bench import _recall, measure_throughput
from knowledge.encoders import VectorCache
from tools.retrieval.base import Filters, RetrievalQuery
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.dense import VIEWS, DenseRetriever

WORDS = [
    "sql",
    "excel",
    "python",
    "baking",
    "pandas",
    "charts",
    "yeast",
    "joins",
    "pivot",
    "loops",
    "dough",
    "crust",
]
# distinct word pairs: no two courses tie, so the exact top-k is unique
COURSES = [
    course(f"c{i}{j}", f"{a} and {b}", f"Learn {a} together with {b}.")
    for i, a in enumerate(WORDS)
    for j, b in enumerate(WORDS)
    if i < j
]


def test_ann_recall_matches_exact_on_a_small_index(tmp_path: Path) -> None:
    corpus = CourseCorpus(pd.DataFrame(COURSES))
    encoder = HashingEncoder()
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    retriever = DenseRetriever(
        corpus, encoder, VectorCache(tmp_path / "v.sqlite", encoder), client=client, views=VIEWS
    )
    query = RetrievalQuery(
        occupation_label="analyst", text="sql joins pivot", filters=Filters(languages=["en"])
    )
    assert _recall(retriever, query, 5) == pytest.approx(1.0)
    nothing = RetrievalQuery(text="SQL", filters=Filters(languages=["fr"]))
    assert _recall(retriever, nothing, 5) == 1.0  # no allowed course: nothing to miss


@pytest.mark.slow
def test_throughput_measures_the_real_encoder() -> None:
    from knowledge.models import is_prepared

    settings = get_settings()
    if not is_prepared(settings, "all-MiniLM-L6-v2"):
        pytest.skip("MiniLM not prepared")
    result = measure_throughput(settings, CourseCorpus(pd.DataFrame(COURSES)), "all-MiniLM-L6-v2", 16)
    assert result.courses == 16 and result.raw_per_s > 0 and result.index_per_s > 0
    assert result.ratio == pytest.approx(result.index_per_s / result.raw_per_s, rel=0.01)
