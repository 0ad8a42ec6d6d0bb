"""Metric values computed by hand, including the cases the published CRAFT evaluation got wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.metrics import (
    catalog_coverage,
    evaluate_run,
    gap_coverage_at_k,
    intra_list_diversity,
    judged_share_at_k,
    latency_summary,
    metric_names,
    out_of_catalog_rate,
)
from evaluation.qrels import Qrels

QRELS = Qrels(
    judgments={
        "q1": {"a": 2, "b": 1, "c": 2, "d": 1, "n": 0},  # c, d relevant but never retrieved
        "q2": {"x": 0},  # judged, nothing relevant: not scored
        "q3": {"y": 1},  # relevant course, but the run has no entry
        "q4": {"z": 1},
    }
)
# Scores deliberately disagree with the list order: the list order is the ranking.
RUN = {
    "q1": [("a", 0.1), ("x", 0.5), ("b", 0.9), ("a", 0.0)],
    "q2": [("x", 1.0)],
    "q4": [("u", 3.0), ("v", 2.0), ("z", 1.0)],
    "q9": [("a", 1.0)],
}


def log2(x: float) -> float:
    return math.log(x, 2)


@pytest.fixture(scope="module")
def evaluation():
    return evaluate_run(QRELS, RUN, k=10)


def test_ndcg_ideal_comes_from_all_judged_relevant_courses(evaluation) -> None:
    row = evaluation.per_query.loc["q1"]
    dcg3 = 2 / log2(2) + 0 + 1 / log2(4)
    ideal3 = 2 / log2(2) + 2 / log2(3) + 1 / log2(4)  # a, c (grade 2), then b or d (grade 1)
    assert row["ndcg@3"] == pytest.approx(dcg3 / ideal3)  # 0.6646
    ideal_from_run = 2 / log2(2) + 1 / log2(3)  # the CRAFT bug: ideal built from the retrieved list
    assert row["ndcg@3"] != pytest.approx(dcg3 / ideal_from_run)
    ideal10 = ideal3 + 1 / log2(5)
    assert row["ndcg@10"] == pytest.approx(dcg3 / ideal10)
    assert row["ndcg@1"] == 1.0


def test_map_is_average_precision_not_precision(evaluation) -> None:
    row = evaluation.per_query.loc["q1"]
    assert row["map@10"] == pytest.approx((1 / 1 + 2 / 3) / 4)  # divided by ALL 4 relevant courses
    assert row["precision@10"] == pytest.approx(2 / 10)
    assert row["recall@10"] == pytest.approx(2 / 4)
    assert row["hit_rate@10"] == 1.0
    assert row["mrr@10"] == 1.0
    assert row["retrieved"] == 3  # the repeated 'a' counts once, at its first position
    assert row["judged@10"] == pytest.approx(2 / 3)


def test_mrr_and_ap_for_a_late_hit(evaluation) -> None:
    row = evaluation.per_query.loc["q4"]
    assert row["mrr@10"] == pytest.approx(1 / 3)
    assert row["map@10"] == pytest.approx(1 / 3)
    assert row["ndcg@1"] == 0.0
    assert row["ndcg@3"] == pytest.approx((1 / log2(4)) / 1.0)


def test_query_sets_are_explicit(evaluation) -> None:
    assert list(evaluation.per_query.index) == ["q1", "q3", "q4"]
    assert evaluation.skipped_no_relevant == ["q2"]
    assert evaluation.missing_from_run == ["q3"]
    assert evaluation.not_in_qrels == ["q9"]
    assert (evaluation.per_query.loc["q3", metric_names(10)] == 0).all()
    assert evaluation.means["map@10"] == pytest.approx(((1 + 2 / 3) / 4 + 0 + 1 / 3) / 3)
    assert list(evaluation.means) == [*metric_names(10), "judged@10", "ndcg_cond@10"]


def test_condensed_ndcg_drops_unjudged_courses_before_the_cutoff(evaluation) -> None:
    """Pool bias check: q4's relevant 'z' sits behind two unjudged courses; condensed, it is first."""
    assert evaluation.per_query.loc["q4", "ndcg_cond@10"] == pytest.approx(1.0)
    assert evaluation.per_query.loc["q4", "ndcg@10"] == pytest.approx(0.5)
    # the judged 'x' (grade 0, judged for q2 only) is unjudged for q1: condensed q1 is a, b
    dcg = 2 / log2(2) + 1 / log2(3)
    ideal = 2 / log2(2) + 2 / log2(3) + 1 / log2(4) + 1 / log2(5)
    assert evaluation.per_query.loc["q1", "ndcg_cond@10"] == pytest.approx(dcg / ideal)
    assert evaluation.per_query.loc["q3", "ndcg_cond@10"] == 0.0  # nothing retrieved
    # beyond the cutoff: a judged course at rank 12 of the full list enters the condensed top 10
    late = [(f"u{i}", 1.0) for i in range(11)] + [("z", 0.5)]
    assert evaluate_run(QRELS, {"q4": late}, k=10).per_query.loc["q4", "ndcg_cond@10"] == pytest.approx(1.0)


def test_cutoff_truncates_the_run() -> None:
    result = evaluate_run(QRELS, {"q4": [("u", 1.0), ("z", 0.5)]}, k=1)
    assert metric_names(1) == ["ndcg@1", "precision@1", "recall@1", "hit_rate@1", "map@1", "mrr@1"]
    assert result.per_query.loc["q4", "hit_rate@1"] == 0.0
    assert result.per_query.loc["q4", "retrieved"] == 1


def test_empty_run_scores_zero_and_no_relevant_query_gives_nan() -> None:
    empty = evaluate_run(QRELS, {}, k=10)
    assert (empty.per_query[metric_names(10)] == 0).all().all()
    assert empty.missing_from_run == ["q1", "q3", "q4"]
    nothing = evaluate_run(Qrels(judgments={"q2": {"x": 0}}), RUN, k=10)
    assert nothing.per_query.empty and math.isnan(nothing.means["ndcg@10"])


def test_beyond_accuracy_figures() -> None:
    run = {"q1": [("c1", 3.0), ("c2", 2.0), ("c3", 1.0)], "q2": [("c3", 1.0), ("ghost", 0.5)]}
    essential = {"q1": {"s1", "s2", "s3", "s4"}, "q2": set()}
    skills = {"c1": {"s1"}, "c2": {"s2", "s9"}, "c3": {"s3"}}
    assert gap_coverage_at_k(run, essential, skills, k=2) == {"q1": 0.5}  # q2 has no essential skills
    assert gap_coverage_at_k(run, essential, skills, k=10) == {"q1": 0.75}

    vectors = {"c1": np.array([1.0, 0.0]), "c2": np.array([0.0, 2.0]), "c3": np.array([3.0, 0.0])}
    diversity = intra_list_diversity(run, vectors, k=10)
    assert diversity == {"q1": pytest.approx((1 + 0 + 1) / 3)}  # q2 has one vector only: undefined

    assert catalog_coverage(run, catalog_size=10) == pytest.approx(4 / 10)
    assert catalog_coverage([run, {"q3": [("c9", 1.0)]}], catalog_size=10) == pytest.approx(5 / 10)
    assert out_of_catalog_rate(run, ["c1", "c2", "c3"]) == pytest.approx(1 / 5)
    assert out_of_catalog_rate({}, ["c1"]) == 0.0

    qrels = Qrels(judgments={"q1": {"c1": 0, "c2": 2}, "q2": {"c3": 1}})
    assert judged_share_at_k(run, qrels, k=10) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_latency_percentiles() -> None:
    latency = latency_summary([0.01, 0.02, 0.03, 0.04, 0.05])
    assert latency.p50_ms == pytest.approx(30.0)
    assert latency.p95_ms == pytest.approx(48.0)
    with pytest.raises(ValueError):
        latency_summary([])
