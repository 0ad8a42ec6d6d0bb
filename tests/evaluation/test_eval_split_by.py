"""`--split-by row` reproduces CRAFT's leaking row split (comparison only); ours does not leak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from craft.cli import app
from craft.settings import Settings
from evaluation.harness import ROW_SPLIT_WARNING, RunInfo, row_split_qrels, run_eval
from evaluation.qrels import Qrels

runner = CliRunner()

QRELS = Qrels(
    judgments={f"occ{i:02d}": {f"course{j}": 1 + (j % 2) for j in range(6)} for i in range(50)}
)  # 300 rows: 240 / 30 / 30


def test_row_split_takes_one_side_of_the_rows_and_counts_the_leak() -> None:
    sides = {name: row_split_qrels(QRELS, name) for name in ("train", "validation", "test", "all")}
    assert [len(sides[name][0]) for name in ("train", "validation", "test", "all")] == [240, 30, 30, 300]
    rows = {
        (q, d, g)
        for name in ("train", "validation", "test")
        for q, d, g in sides[name][0].to_frame().itertuples(index=False)
    }
    assert rows == set(QRELS.to_frame().itertuples(index=False))  # the sides partition the rows
    leaked = {name: count for name, (_, count) in sides.items()}
    assert len(set(leaked.values())) == 1  # a property of the split, whatever side is evaluated
    assert 0 < leaked["test"] <= len(sides["test"][0].queries())
    assert row_split_qrels(QRELS, "test") == sides["test"]  # seeded
    with pytest.raises(ValueError, match="unknown split"):
        row_split_qrels(QRELS, "dev")  # type: ignore[arg-type]


def test_cli_lists_split_by() -> None:
    result = runner.invoke(app, ["eval", "--help"])
    assert result.exit_code == 0, result.output
    assert "--split-by" in result.output


def test_cli_rejects_an_unknown_split_by() -> None:
    result = runner.invoke(app, ["eval", "--split-by", "rows"])
    assert result.exit_code == 1
    assert "unknown --split-by 'rows': occupation or row" in result.output


def test_run_eval_rejects_an_unknown_split_by(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split_by 'rows'"):
        run_eval(Settings(), "silver", "test", 10, ["bm25"], tmp_path, split_by="rows")  # type: ignore[arg-type]


def test_run_info_defaults_to_the_occupation_split() -> None:
    fields = RunInfo.model_fields
    assert fields["split_by"].default == "occupation" and fields["leaked_occupations"].default == 0


@pytest.mark.data
def test_row_split_leaks_on_silver_occupation_split_does_not(
    enriched_settings: Settings, tmp_path: Path
) -> None:
    ours, craft = tmp_path / "occupation", tmp_path / "row"
    run_eval(enriched_settings, "silver", "test", 10, ["bm25"], ours, max_queries=3)
    run_eval(enriched_settings, "silver", "test", 10, ["bm25"], craft, max_queries=3, split_by="row")

    ours_run = json.loads((ours / "run.json").read_text())
    assert ours_run["split_by"] == "occupation" and ours_run["leaked_occupations"] == 0
    assert ROW_SPLIT_WARNING not in ours_run["notes"]
    assert "WARNING" not in (ours / "report.md").read_text()

    craft_run = json.loads((craft / "run.json").read_text())
    assert craft_run["split_by"] == "row" and craft_run["queries"] == 3
    assert 0 < craft_run["leaked_occupations"] <= craft_run["split_occupations"]
    assert ROW_SPLIT_WARNING in craft_run["notes"]
    report = (craft / "report.md").read_text()
    assert ROW_SPLIT_WARNING in report and "for comparison only" in report
    assert f"{craft_run['leaked_occupations']} test occupations also have rows in train" in report
    assert RunInfo.model_validate(craft_run).split_by == "row"
