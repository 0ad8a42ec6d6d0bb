"""Silver qrels from skill coverage on a hand-made knowledge base, grades computed by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.qrels import Qrels, load_external
from evaluation.silver import (
    build_silver,
    calibrate_thresholds,
    gain_matrix,
    grade,
    weighted_kappa,
    write_silver,
)


@dataclass
class TinyKB:
    occupation_skills: dict[str, list[tuple[str, str]]]
    courses: pd.DataFrame = field(default_factory=pd.DataFrame)


@pytest.fixture
def kb() -> TinyKB:
    return TinyKB(
        occupation_skills={
            # s4 is listed twice (as ESCO sometimes does): the essential weight wins
            "occ:A": [("s1", "essential"), ("s2", "essential"), ("s3", "optional"), ("s4", "optional")],
            "occ:B": [("s3", "essential"), ("s1", "optional"), ("s4", "essential"), ("s4", "optional")],
        },
        courses=pd.DataFrame(
            {
                "id": ["c1", "c2", "c3", "c4", "c5", "c6"],
                "has_description": [True, True, False, True, True, True],
            }
        ),
    )


COURSE_SKILLS = {
    "c1": {"s1", "s2"},  # A: 2+2 = 4   B: 1
    "c2": {"s3"},  # A: 1        B: 2
    "c3": {"s1", "s2", "s3"},  # no description: never graded
    "c4": {"s1"},  # A: 2        B: 1
    "c6": {"s1", "s3", "x9"},  # A: 2+1 = 3 B: 1+2 = 3 (x9 belongs to no occupation)
}
# c5 has no skills: gain 0 everywhere


def test_gains_are_two_per_essential_and_one_per_optional(kb: TinyKB) -> None:
    gains = gain_matrix(kb, COURSE_SKILLS)
    assert gains.courses == ["c1", "c2", "c4", "c5", "c6"]
    expected = {
        ("occ:A", "c1"): 4,
        ("occ:A", "c2"): 1,
        ("occ:A", "c4"): 2,
        ("occ:A", "c6"): 3,
        ("occ:B", "c1"): 1,
        ("occ:B", "c2"): 2,
        ("occ:B", "c4"): 1,
        ("occ:B", "c6"): 3,
    }
    for (occ, course), gain in expected.items():
        assert gains.gain(occ, course) == gain, (occ, course)
    assert gains.gain("occ:A", "c5") == 0 and gains.gain("occ:A", "c3") == 0
    assert gains.gains_for([("occ:A", "c1"), ("occ:X", "c1"), ("occ:B", "c6")]).tolist() == [4, 0, 3]


def test_duplicate_relation_keeps_the_higher_weight(kb: TinyKB) -> None:
    gains = gain_matrix(kb, {"c1": {"s4"}})
    assert gains.gain("occ:B", "c1") == 2 and gains.gain("occ:A", "c1") == 1


def test_build_silver_grades_by_thresholds(kb: TinyKB) -> None:
    silver = build_silver(kb, COURSE_SKILLS, thresholds=(2, 4))
    assert silver.judgments == {
        "occ:A": {"c1": 2, "c4": 1, "c6": 1},
        "occ:B": {"c2": 1, "c6": 1},
    }
    loose = build_silver(kb, COURSE_SKILLS, thresholds=(1, 3))
    assert loose.judgments == {
        "occ:A": {"c1": 2, "c2": 1, "c4": 1, "c6": 2},
        "occ:B": {"c1": 1, "c2": 1, "c4": 1, "c6": 2},
    }
    assert all("c3" not in docs for docs in loose.judgments.values())


def test_thresholds_are_validated(kb: TinyKB) -> None:
    for bad in ((0, 2), (3, 3), (4, 2)):
        with pytest.raises(ValueError):
            build_silver(kb, COURSE_SKILLS, thresholds=bad)


def test_grade_boundaries_are_inclusive() -> None:
    assert grade(np.array([0, 1, 2, 3, 4, 9]), 2, 4).tolist() == [0, 0, 1, 1, 2, 2]


def test_weighted_kappa_by_hand() -> None:
    assert weighted_kappa(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 2])) == pytest.approx(1.0)
    # observed disagreement 0.25, expected 0.4375 (linear weights 0, 1/2, 1) -> 1 - 0.25/0.4375 = 3/7
    assert weighted_kappa(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])) == pytest.approx(3 / 7)


def test_calibration_picks_the_kappa_maximum(kb: TinyKB) -> None:
    # Only t1 = 2, t2 = 4 reproduces these grades: c6 (gain 3) must be 1, c1 (gain 4) 2, c2 (gain 1) 0.
    gold = Qrels(
        judgments={
            "occ:A": {"c1": 2, "c4": 1, "c6": 1, "c2": 0, "c5": 0},
            "occ:B": {"c2": 1, "c1": 0, "c4": 0},
        }
    )
    t1, t2, table = calibrate_thresholds(kb, COURSE_SKILLS, gold)
    assert (t1, t2) == (2, 4)
    assert table.chosen.kappa == pytest.approx(1.0) and table.chosen.accuracy == 1.0
    assert table.confusion == [[4, 0, 0], [0, 3, 0], [0, 0, 1]]
    assert table.pairs == 8 and table.gold_grades == {0: 4, 1: 3, 2: 1}
    assert all(s.kappa < 1.0 for s in table.grid[1:])
    kappas = [s.kappa for s in table.grid]
    assert kappas == sorted(kappas, reverse=True)
    assert {(s.t1, s.t2) for s in table.grid} == {(a, b) for a in range(1, 5) for b in range(a + 1, 6)}
    assert "t1 = 2, t2 = 4" in table.markdown()


def test_calibration_needs_judgments(kb: TinyKB) -> None:
    with pytest.raises(ValueError):
        calibrate_thresholds(kb, COURSE_SKILLS, Qrels())


def test_write_silver_round_trips(kb: TinyKB, tmp_path: Path) -> None:
    silver = build_silver(kb, COURSE_SKILLS, thresholds=(2, 4))
    summary = write_silver(
        silver, tmp_path, thresholds=(2, 4), table=None, courses_with_skills=5, seconds=0.1
    )
    assert summary.pairs_by_grade == {1: 4, 2: 1} and summary.occupations == 2
    assert load_external(tmp_path / "silver.qrels").judgments == silver.judgments
    assert load_external(tmp_path / "silver.parquet").judgments == silver.judgments
    assert (tmp_path / "silver.qrels").read_text().splitlines()[0] == "occ:A 0 c1 2"
