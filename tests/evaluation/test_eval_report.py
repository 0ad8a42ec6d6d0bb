"""The report writer produces every output, with CIs, significance against the baseline and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evaluation.metrics import evaluate_run, latency_summary
from evaluation.qrels import Qrels
from evaluation.report import system_result, write_report

QUERIES = [f"occ{i}" for i in range(8)]
QRELS = Qrels(judgments={q: {f"{q}-good": 2, f"{q}-ok": 1, f"{q}-bad": 0} for q in QUERIES})


def run_for(good: bool) -> dict[str, list[tuple[str, float]]]:
    if good:
        return {q: [(f"{q}-good", 2.0), (f"{q}-ok", 1.0)] for q in QUERIES}
    return {q: [("noise", 2.0), (f"{q}-ok", 1.0)] for q in QUERIES}


@pytest.fixture(scope="module")
def results():
    weak = system_result(
        "bm25",
        evaluate_run(QRELS, run_for(False), k=10),
        latency=latency_summary([0.01] * 8),
        beyond={"out_of_catalog_rate": 0.0, "catalog_coverage": 0.1},
    )
    strong = system_result(
        "hybrid",
        evaluate_run(QRELS, run_for(True), k=10),
        beyond={"out_of_catalog_rate": 0.0},
        per_query_extra={"gap_coverage@10": dict.fromkeys(QUERIES, 0.5)},
    )
    return [weak, strong]


def test_system_result_has_a_ci_for_every_metric(results) -> None:
    strong = results[1]
    assert strong.means["ndcg@10"] == pytest.approx(1.0)
    assert strong.cis["ndcg@10"].low == pytest.approx(1.0)
    assert "gap_coverage@10" in strong.cis and strong.per_query["gap_coverage@10"].eq(0.5).all()
    assert set(strong.cis) >= {"map@10", "mrr@10", "judged@10"}


def test_write_report_outputs(results, tmp_path: Path) -> None:
    paths = write_report(
        results, tmp_path, baseline="bm25", ground_truth="hand-made", labels={"occ0": "zero"}
    )
    assert {p.name for p in tmp_path.iterdir()} == {
        "metrics.json",
        "report.md",
        "per_occupation.csv",
        "metric_at_k.png",
        "per_occupation_ndcg.png",
    }
    for kind in ("curves", "scatter"):
        assert paths[kind].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    payload = json.loads(paths["json"].read_text())
    assert payload["baseline"] == "bm25" and payload["k"] == 10
    test = payload["significance_vs_baseline"]["hybrid"]["ndcg@10"]
    assert test["exact"] and test["p_value"] == pytest.approx(2 / 256)  # 8 identical positive differences
    assert payload["systems"]["bm25"]["latency"]["p50_ms"] == pytest.approx(10.0)

    markdown = paths["markdown"].read_text()
    assert "| hybrid | 1.000 [1.000, 1.000]" in markdown
    assert "(p=0.00781) *" in markdown
    assert "judged@10" in markdown and "gap_coverage@10" in markdown

    table = pd.read_csv(paths["csv"])
    assert len(table) == 16 and set(table.system) == {"bm25", "hybrid"}
    assert table.loc[table.occupation_uri == "occ0", "occupation"].eq("zero").all()


def test_unknown_baseline_is_an_error(results, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="baseline"):
        write_report(results, tmp_path, baseline="dense")
