"""The cross-encoder wrapper: only first-stage candidates, sorted by the model, k respected, one batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from craft.settings import Settings
from tools.retrieval.base import GapSkill, RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.rerank import (
    CrossEncoderReranker,
    RerankerMissing,
    blend,
    load_reranker,
    rerank_query_text,
    resolve_reranker,
)

IDS = [f"c{i}" for i in range(8)]


@pytest.fixture
def corpus() -> CourseCorpus:
    return CourseCorpus(
        pd.DataFrame(
            {
                "id": IDS,
                "title": [f"title {cid}" for cid in IDS],
                "description": [f"about {cid}" for cid in IDS],
                "raw_skills": [None] * len(IDS),
            }
        )
    )


class FirstStage(Retriever):
    name = "first"

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.asked: list[int] = []

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        self.asked.append(k)
        return [ScoredCourse(course_id=c, score=1.0 / (i + 1)) for i, c in enumerate(self.ids[:k])]


class Scorer:
    """Scores a pair by a fixed table of course titles; records each call."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.calls: list[tuple[list[tuple[str, str]], int]] = []

    def predict(self, sentences: list[tuple[str, str]], batch_size: int = 32, **kwargs: object) -> np.ndarray:
        self.calls.append((list(sentences), batch_size))
        return np.array(
            [self.scores.get(course.split("\n")[0].removeprefix("title "), 0.0) for _, course in sentences]
        )


def _query() -> RetrievalQuery:
    gap = [
        GapSkill(uri="s2", label="bookkeeping", essential=False),
        GapSkill(uri="s1", label="use spreadsheets", essential=True),
        GapSkill(uri="s3", label="use spreadsheets", essential=True),
    ]
    return RetrievalQuery(occupation_uri="o", occupation_label="accountant", gap=gap, text="long text")


def test_returns_only_first_stage_candidates_sorted_and_k(corpus: CourseCorpus) -> None:
    first = FirstStage(["c0", "c1", "c2", "c3", "c4"])
    scorer = Scorer({"c3": 5.0, "c1": 2.0, "c4": 2.0, "c7": 99.0})  # c7 is not a candidate
    reranker = CrossEncoderReranker(first, corpus, scorer, depth=5)
    hits = reranker.retrieve(_query(), k=3)
    assert [h.course_id for h in hits] == ["c3", "c1", "c4"]  # c1 before c4: tie keeps first-stage order
    assert [h.score for h in hits] == [5.0, 2.0, 2.0]
    assert first.asked == [5]
    assert len(scorer.calls) == 1 and scorer.calls[0][1] == 5  # one batch with every candidate
    queries = {q for q, _ in scorer.calls[0][0]}
    assert queries == {rerank_query_text(_query())}

    every = reranker.retrieve(_query(), k=10)  # k above depth: the first stage is asked for k
    assert first.asked[-1] == 10 and {h.course_id for h in every} == {"c0", "c1", "c2", "c3", "c4"}
    scores = [h.score for h in every]
    assert scores == sorted(scores, reverse=True)
    assert reranker.name == "first+ce"


def test_empty_first_stage_and_zero_k(corpus: CourseCorpus) -> None:
    scorer = Scorer({})
    assert CrossEncoderReranker(FirstStage([]), corpus, scorer).retrieve(_query(), 5) == []
    assert CrossEncoderReranker(FirstStage(["c0"]), corpus, scorer).retrieve(_query(), 0) == []
    assert scorer.calls == []
    with pytest.raises(ValueError, match="depth"):
        CrossEncoderReranker(FirstStage([]), corpus, scorer, depth=0)


def test_blend_weighs_z_scores_and_its_ends_are_either_ranking(corpus: CourseCorpus) -> None:
    ce, first = np.array([3.0, 1.0, 2.0]), np.array([10.0, 30.0, 20.0])
    assert np.argsort(-blend(ce, first, 1.0)).tolist() == [0, 2, 1]  # the re-ranker alone
    assert np.argsort(-blend(ce, first, 0.0)).tolist() == [1, 2, 0]  # the first stage alone
    assert np.allclose(blend(ce, first, 0.5), 0.0)  # two exactly opposed rankings cancel out
    # scale-free: multiplying the first-stage scores changes nothing
    assert np.allclose(blend(ce, first * 7 + 3, 0.3), blend(ce, first, 0.3))
    assert np.allclose(blend(ce, np.ones(3), 0.4), 0.4 * blend(ce, first, 1.0))  # a constant adds nothing
    with pytest.raises(ValueError, match="alpha"):
        blend(ce, first, 1.5)

    first_stage = FirstStage(["c0", "c1", "c2"])  # scores 1, 1/2, 1/3
    scorer = Scorer({"c2": 1.0})
    alone = CrossEncoderReranker(first_stage, corpus, scorer, alpha=1.0).retrieve(_query(), 3)
    mostly_first = CrossEncoderReranker(first_stage, corpus, scorer, alpha=0.2).retrieve(_query(), 3)
    assert alone[0].course_id == "c2"
    assert mostly_first[0].course_id == "c0"
    with pytest.raises(ValueError, match="alpha"):
        CrossEncoderReranker(first_stage, corpus, scorer, alpha=-0.1)


def test_query_text_is_label_then_gap_skills_once() -> None:
    assert rerank_query_text(_query()) == "accountant: bookkeeping, use spreadsheets"
    bare = RetrievalQuery(occupation_label="nurse")
    assert rerank_query_text(bare) == "nurse"
    assert rerank_query_text(RetrievalQuery(text="free text")) == "free text"


def test_no_trained_reranker_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    for call in (resolve_reranker, load_reranker):
        with pytest.raises(RerankerMissing, match=r"no trained reranker 'reranker'.*craft train reranker"):
            call(settings)
