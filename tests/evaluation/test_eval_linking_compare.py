"""Paired comparison of two linking benchmark reports (the linker A/B)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from evaluation.linking import LinkingReport, QuerySetResult, compare_reports, print_comparison


def _report(encoder: str, ranks: list[int | None], name: str = "occupations EN") -> LinkingReport:
    n = len(ranks)
    result = QuerySetResult(
        name=name,
        queries=n,
        recall_at_1=sum(r == 1 for r in ranks) / n,
        recall_at_5=sum(r is not None and r <= 5 for r in ranks) / n,
        mrr_at_10=sum(1 / r for r in ranks if r) / n,
        latency_ms_p50=1.0,
        latency_ms_p95=2.0,
        examples_missed=[],
        ranks=ranks,
    )
    return LinkingReport(
        snapshot="s",
        encoder=encoder,
        index_sample=None,
        results=[result],
        encoder_strings_per_s=1.0,
        knowledge_build_s=1.0,
        rss_mb=1.0,
    )


def test_a_clearly_better_encoder_is_significant_and_a_tie_is_not() -> None:
    base = _report("e5", [1, 2, None, 3] * 50)
    better = _report("tuned", [1, 1, 1, 3] * 50)
    (row,) = compare_reports(base, better)
    assert row.recall_at_1 == (pytest.approx(0.25), pytest.approx(0.75))
    assert row.p_recall_at_1 < 0.001
    assert row.p_mrr_at_10 < 0.001
    (same,) = compare_reports(base, _report("copy", [1, 2, None, 3] * 50))
    assert same.p_recall_at_1 == pytest.approx(1.0)
    out = io.StringIO()
    print_comparison(base, better, Console(file=out, width=200))
    assert "0.250 → 0.750" in out.getvalue()


def test_reports_without_per_query_ranks_cannot_be_paired() -> None:
    old = _report("e5", [1, 2])
    old.results[0].ranks = []  # a report written before ranks were stored
    with pytest.raises(ValueError, match="re-run the older benchmark"):
        compare_reports(old, _report("tuned", [1, 1]))
    assert compare_reports(_report("e5", [1], name="skills EN (alt labels)"), _report("tuned", [1])) == []
