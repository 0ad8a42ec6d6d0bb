"""The evaluation harness: system registry, coverage re-ranking wrapper, and a real run on gold/silver."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from craft.settings import Settings
from evaluation.harness import (
    CoverageReranked,
    SystemFactory,
    SystemUnavailable,
    TfidfRows,
    known_system,
    run_eval,
)
from tools.retrieval.base import GapSkill, RetrievalQuery, Retriever, ScoredCourse


class Fixed(Retriever):
    name = "fixed"

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        return [ScoredCourse(course_id=c, score=s) for c, s in [("a", 3.0), ("b", 2.9), ("c", 1.0)]][:k]


def test_system_names() -> None:
    for name in ("bm25", "tfidf", "random", "popularity", "dense", "hybrid", "bm25+cov", "hybrid+cov"):
        assert known_system(name), name
    for name in ("routed+ce", "bm25+ce", "routed+ce+cov"):
        assert known_system(name), name
    for name in ("bm26", "bm25+cov+cov", "+cov", "cov", "bm25+ce+ce", "bm25+cov+ce", "+ce"):
        assert not known_system(name), name


def test_cross_encoder_system_is_skipped_without_a_trained_reranker(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    factory = SystemFactory(settings, None, None, {})  # type: ignore[arg-type]
    with pytest.raises(SystemUnavailable, match=r"no trained reranker.*craft train reranker"):
        factory.get("routed+ce")


def test_coverage_rerank_wrapper_prefers_new_gap_skills() -> None:
    skills = {"a": {"s1"}, "b": {"s1"}, "c": {"s2"}}
    gap = [GapSkill(uri="s1", label="one", essential=True), GapSkill(uri="s2", label="two", essential=True)]
    wrapped = CoverageReranked(Fixed(), skills)
    assert wrapped.name == "fixed+cov"
    ranked = wrapped.retrieve(RetrievalQuery(text="x", gap=gap), k=2)
    assert [h.course_id for h in ranked] == ["a", "c"]  # b adds nothing once a covers s1


def test_tfidf_rows_materialize_one_course() -> None:
    corpus = SimpleNamespace(position={"a": 0, "b": 1})
    rows = TfidfRows(corpus, sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]])))  # type: ignore[arg-type]
    assert rows["b"].tolist() == [0.0, 2.0] and len(rows) == 2 and list(rows) == ["a", "b"]
    assert "c" not in rows


@pytest.mark.data
def test_harness_on_gold(enriched_settings: Settings, tmp_path: Path) -> None:
    results = run_eval(enriched_settings, "gold", "test", 10, ["bm25", "random"], tmp_path, max_queries=5)
    by_name = {r.name: r for r in results}
    assert set(by_name) == {"bm25", "random"}
    for name in ("metrics.json", "report.md", "per_occupation.csv", "run.json", "metric_at_k.png"):
        assert (tmp_path / name).is_file(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["baseline"] == "bm25" and metrics["k"] == 10
    assert "random" in metrics["significance_vs_baseline"]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["queries"] == 5 and run["ground_truth"]["name"] == "gold" and run["skipped"] == {}
    for result in results:
        assert len(result.per_query) == 5
        assert result.beyond["out_of_catalog_rate"] == 0.0
        assert 0.0 < result.beyond["catalog_coverage@10"] < 1.0
        assert result.latency is not None and result.latency.queries == 5
        assert {"gap_coverage@10", "ild@10", "judged@10", "ndcg_cond@10"} <= set(result.means)
    assert by_name["bm25"].means["ndcg@10"] > by_name["random"].means["ndcg@10"]
    assert "| bm25 |" in (tmp_path / "report.md").read_text()


@pytest.mark.data
def test_harness_on_silver_with_coverage_rerank(enriched_settings: Settings, tmp_path: Path) -> None:
    results = run_eval(enriched_settings, "silver", "test", 10, ["bm25", "bm25+cov"], tmp_path, max_queries=5)
    run = json.loads((tmp_path / "run.json").read_text())
    t1, t2 = run["ground_truth"]["thresholds"]
    assert 1 <= t1 < t2 and run["queries"] == 5 and run["split_occupations"] > 250
    by_name = {r.name: r for r in results}
    assert by_name["bm25+cov"].beyond["out_of_catalog_rate"] == 0.0
    # the re-ranker picks courses for uncovered gap skills: it never covers less of the gap on average
    assert by_name["bm25+cov"].means["gap_coverage@10"] >= by_name["bm25"].means["gap_coverage@10"]


@pytest.mark.data
def test_unknown_system_is_rejected(enriched_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown systems"):
        run_eval(enriched_settings, "gold", "test", 10, ["bm26"], tmp_path)


@pytest.mark.data
def test_dense_without_encoder_is_skipped_with_a_message(enriched_settings: Settings, tmp_path: Path) -> None:
    missing = {"en": "no-such-encoder", "*": "no-such-encoder"}
    results = run_eval(
        enriched_settings.model_copy(update={"course_encoders": missing}),
        "gold",
        "test",
        10,
        ["bm25", "dense", "routed", "hybrid"],
        tmp_path,
        max_queries=2,
        dense_model="no-such-encoder",
    )
    assert [r.name for r in results] == ["bm25"]
    skipped = json.loads((tmp_path / "run.json").read_text())["skipped"]
    assert set(skipped) == {"dense", "routed", "hybrid"}
    assert "craft models prepare no-such-encoder" in skipped["dense"]
    assert "craft models prepare no-such-encoder" in skipped["routed"]
    assert skipped["hybrid"].startswith("hybrid needs routed dense retrieval")
    assert "skipped `dense`" in (tmp_path / "report.md").read_text()
