"""Qrels I/O round trips and the mapping of gold judgments (source, title, URL) onto catalog ids."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evaluation.qrels import Qrels, load_external, load_gold

OCC = "http://data.europa.eu/esco/occupation/x"


def test_trec_and_parquet_round_trip(tmp_path: Path) -> None:
    qrels = Qrels(judgments={OCC: {"coursera:1": 2, "edx:1": 0}, "q2": {"udemy:1": 1}})
    qrels.write_trec(tmp_path / "q.txt")
    assert (tmp_path / "q.txt").read_text().splitlines() == [
        f"{OCC} 0 coursera:1 2",
        f"{OCC} 0 edx:1 0",
        "q2 0 udemy:1 1",
    ]
    assert load_external(tmp_path / "q.txt") == qrels
    qrels.write_parquet(tmp_path / "q.parquet")
    assert load_external(tmp_path / "q.parquet") == qrels
    assert len(qrels) == 3
    assert qrels.relevant(OCC) == {"coursera:1": 2}
    assert qrels.restrict({"q2"}).queries() == ["q2"]


def test_external_trec_tolerates_blank_and_comment_lines_and_rejects_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "ext.qrels"
    path.write_text("# header\n\nq1\tQ0\td1\t2\nq1 0 d1 1\n")
    assert load_external(path).judgments == {"q1": {"d1": 2}}  # a pair listed twice keeps its highest grade
    path.write_text("q1 0 d1\n")
    with pytest.raises(ValueError, match="4 columns"):
        load_external(path)


def _write_gold(path: Path, rows: list[dict[str, object]]) -> Path:
    lines = [json.dumps({"occupation_uri": OCC, "occupation": "analyst", **row}) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gold_matches_by_title_within_source_then_url(tmp_path: Path, courses: pd.DataFrame) -> None:
    gold = _write_gold(
        tmp_path / "gold.jsonl",
        [
            # same title exists in coursera and edx: the source decides
            {"source": "edx", "url": None, "title": "DATA mining", "grade": 2},
            # merged duplicate: coachable:9 lives on in coursera:2's also_in
            {"source": "coachable", "url": "https://x.org/excel", "title": "Excel Basics", "grade": 1},
            # two udemy courses share the title: the URL picks one
            {
                "source": "udemy",
                "url": "https://www.udemy.com/course/sql-analysts-2",
                "title": "SQL for Analysts",
                "grade": 2,
            },
            # title differs, URL matches (www/scheme/trailing slash/`/course/` normalized away)
            {"source": "udemy", "url": "http://udemy.com/python-x", "title": "Python 3 Bootcamp", "grade": 0},
            # not in the catalog at all
            {"source": "coursera", "url": "https://www.coursera.org/learn/nope", "title": "Nope", "grade": 2},
        ],
    )
    qrels, report = load_gold(gold, courses)
    assert qrels.judgments == {OCC: {"edx:1": 2, "coursera:2": 1, "udemy:2": 2, "udemy:3": 0}}
    assert (report.judgments, report.matched, report.unmatched) == (5, 4, 1)
    assert (report.by_title, report.by_url, report.ambiguous_titles) == (3, 1, 0)
    assert [j.title for j in report.unmatched_examples] == ["Nope"]
    assert report.per_source["udemy"].matched == 2
    assert report.per_source["coursera"].model_dump() == {
        "judgments": 1,
        "matched": 0,
        "by_title": 0,
        "by_url": 0,
    }
    assert "4/5" in report.summary()


def test_gold_ambiguous_title_grades_every_candidate(tmp_path: Path, courses: pd.DataFrame) -> None:
    gold = _write_gold(
        tmp_path / "gold.jsonl",
        [{"source": "udemy", "url": "https://elsewhere.com/sql", "title": "SQL for Analysts", "grade": 1}],
    )
    qrels, report = load_gold(gold, courses)
    assert qrels.judgments == {OCC: {"udemy:1": 1, "udemy:2": 1}}
    assert report.ambiguous_titles == 1


def test_gold_same_course_judged_twice_keeps_highest_grade(tmp_path: Path, courses: pd.DataFrame) -> None:
    gold = _write_gold(
        tmp_path / "gold.jsonl",
        [
            {"source": "coursera", "url": None, "title": "Excel Basics", "grade": 1},
            {"source": "udemy_list", "url": None, "title": "excel basics", "grade": 2},
        ],
    )
    qrels, report = load_gold(gold, courses)
    assert qrels.judgments == {OCC: {"coursera:2": 2}}
    assert report.conflicts == 1
    assert report.qrels_pairs == 1
