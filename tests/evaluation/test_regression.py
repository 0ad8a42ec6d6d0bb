"""Metric regression: the committed gold figures of the main systems must hold within a tolerance.

A failure means retrieval quality moved. If the change was intended, re-measure with the command recorded
in ``evaluation/expected/gold_bm25.json`` and commit the new figures with the change that caused them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from craft.settings import Settings
from evaluation.harness import run_eval

EXPECTED = Path(__file__).resolve().parents[2] / "evaluation" / "expected" / "gold_bm25.json"


@pytest.mark.data
@pytest.mark.regression
def test_gold_figures_hold(enriched_settings: Settings, tmp_path: Path) -> None:
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    results = run_eval(
        enriched_settings,
        expected["ground_truth"],
        expected["split"],
        expected["k"],
        list(expected["systems"]),
        tmp_path,
    )
    tolerance = expected["tolerance"]
    drift = {}
    for result in results:
        assert len(result.per_query) == expected["queries"], result.name
        assert result.beyond["out_of_catalog_rate"] == 0.0, result.name
        for metric, value in expected["systems"][result.name].items():
            if abs(result.means[metric] - value) > tolerance:
                drift[f"{result.name} {metric}"] = (value, round(result.means[metric], 4))
    assert not drift, f"figures moved beyond ±{tolerance} (expected, measured): {drift}"
