"""Silver ground truth: occupation → course relevance from skill coverage, calibrated on the gold set.

A course's gain for an occupation is ``2 × (essential skills of the occupation it teaches) + 1 × (optional
ones)``, counted over the course's ESCO skills (``knowledge.course_skills``). Gains become grades by two
thresholds: grade 2 if ``gain ≥ t2``, grade 1 if ``t1 ≤ gain < t2``, otherwise the pair is not listed
(grade 0, TREC convention). Only courses with a description are graded (title-only records are never
retrieved by default either).

Threshold choice (``calibrate_thresholds``): on the judged (occupation, course) pairs of the development gold
set, pick the ``(t1, t2)`` with ``1 ≤ t1 < t2`` that maximizes **linearly weighted Cohen's kappa** between
the silver grade and the gold grade. Weighted kappa because the grades are ordinal (calling a 2 a 0 is worse
than calling it a 1) and chance-corrected (the gold pool is skewed toward some grades, so raw agreement would
reward predicting the majority grade). Ties: higher F1 of "grade ≥ 1", then the smaller (stricter-first)
thresholds. Caveat, reported next to any silver figure: the gold pool was built from BM25 and a bi-encoder,
so the judged pairs are the lexically plausible ones, and systems that read the same course skills as the
silver builder (``+cov`` re-ranking) are favoured on silver by construction.

Everything is one sparse product — occupations × skills (weights 2/1) times skills × courses (0/1) — so the
full 3,008 × ~4,600 grid takes well under a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from evaluation.qrels import Qrels

ESSENTIAL_WEIGHT = 2
OPTIONAL_WEIGHT = 1
DEFAULT_THRESHOLDS = (2, 4)  # used only when no gold set is available for calibration
MAX_THRESHOLD = 20
CRITERION = "linearly weighted Cohen's kappa (silver vs gold grade over the judged gold pairs)"


class KnowledgeLike(Protocol):
    """What the silver builder reads of a ``KnowledgeBase`` (tests pass a small stand-in)."""

    @property
    def occupation_skills(self) -> Mapping[str, Sequence[tuple[str, str]]]: ...

    @property
    def courses(self) -> pd.DataFrame: ...


@dataclass(frozen=True)
class GainMatrix:
    """Sparse occupation × course gains (int), rows/columns named by URI/course id."""

    occupations: list[str]
    courses: list[str]
    gains: sp.csr_matrix

    def gain(self, occupation: str, course: str) -> int:
        row = self._row.get(occupation)
        col = self._col.get(course)
        return 0 if row is None or col is None else int(self.gains[row, col])

    @cached_property
    def _row(self) -> dict[str, int]:
        return {uri: i for i, uri in enumerate(self.occupations)}

    @cached_property
    def _col(self) -> dict[str, int]:
        return {cid: j for j, cid in enumerate(self.courses)}

    def gains_for(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Gains of many (occupation, course) pairs; unknown occupations or courses gain 0."""
        rows, cols = self._row, self._col
        out = np.zeros(len(pairs), dtype=np.int64)
        known = [(i, rows[o], cols[c]) for i, (o, c) in enumerate(pairs) if o in rows and c in cols]
        if known:
            index, r, c = (np.array(x) for x in zip(*known, strict=True))
            out[index] = np.asarray(self.gains[r, c]).ravel()
        return out


def described_course_ids(courses: pd.DataFrame) -> list[str]:
    return courses.id[courses.has_description.astype(bool)].astype(str).tolist()


def gain_matrix(kb: KnowledgeLike, course_skills: Mapping[str, set[str]]) -> GainMatrix:
    """Occupations (sorted) × described courses (catalog order) with ``2·essential + 1·optional`` hits."""
    occupations = sorted(kb.occupation_skills)
    courses = described_course_ids(kb.courses)
    skills = sorted(
        {s for pairs in kb.occupation_skills.values() for s, _ in pairs}
        | {s for cid in courses for s in course_skills.get(cid, ())}
    )
    skill_col = {uri: j for j, uri in enumerate(skills)}

    rows, cols, weights = [], [], []
    for i, occ in enumerate(occupations):
        for skill, relation in kb.occupation_skills[occ]:
            rows.append(i)
            cols.append(skill_col[skill])
            weights.append(ESSENTIAL_WEIGHT if relation == "essential" else OPTIONAL_WEIGHT)
    # A skill listed twice for one occupation (essential and optional) keeps its highest weight.
    occ_by_skill = _max_duplicates(rows, cols, weights, (len(occupations), len(skills)))

    s_rows, s_cols = [], []
    for j, cid in enumerate(courses):
        for skill in course_skills.get(cid, ()):
            s_rows.append(skill_col[skill])
            s_cols.append(j)
    skill_by_course = sp.csr_matrix(
        (np.ones(len(s_rows), dtype=np.int32), (s_rows, s_cols)), shape=(len(skills), len(courses))
    )
    gains = (occ_by_skill @ skill_by_course).tocsr()
    gains.eliminate_zeros()
    return GainMatrix(occupations=occupations, courses=courses, gains=gains)


def _max_duplicates(
    rows: list[int], cols: list[int], weights: list[int], shape: tuple[int, int]
) -> sp.csr_matrix:
    if not rows:
        return sp.csr_matrix(shape, dtype=np.int32)
    frame = pd.DataFrame({"r": rows, "c": cols, "w": weights}).groupby(["r", "c"], as_index=False).w.max()
    return sp.csr_matrix(
        (frame.w.to_numpy(dtype=np.int32), (frame.r.to_numpy(), frame.c.to_numpy())), shape=shape
    )


def grade(gains: np.ndarray, t1: int, t2: int) -> np.ndarray:
    """0/1/2 from gains: 2 if gain ≥ t2, 1 if gain ≥ t1, else 0."""
    gains = np.asarray(gains)
    return np.where(gains >= t2, 2, np.where(gains >= t1, 1, 0))


def _check(t1: int, t2: int) -> None:
    if not 1 <= t1 < t2:
        raise ValueError(f"thresholds must satisfy 1 <= t1 < t2, got t1={t1}, t2={t2}")


def build_silver(
    kb: KnowledgeLike,
    course_skills: Mapping[str, set[str]],
    *,
    thresholds: tuple[int, int],
    gains: GainMatrix | None = None,
) -> Qrels:
    """Graded silver qrels for every occupation over the described courses (grade-0 pairs not listed)."""
    t1, t2 = thresholds
    _check(t1, t2)
    matrix = gains or gain_matrix(kb, course_skills)
    coo = matrix.gains.tocoo()
    keep = coo.data >= t1
    rows, cols, values = coo.row[keep], coo.col[keep], coo.data[keep]
    grades = grade(values, t1, t2)
    judgments: dict[str, dict[str, int]] = {}
    for r, c, g in zip(rows.tolist(), cols.tolist(), grades.tolist(), strict=True):
        judgments.setdefault(matrix.occupations[r], {})[matrix.courses[c]] = g
    return Qrels(judgments=judgments)


# --- calibration on the gold set -------------------------------------------------------------------


def weighted_kappa(a: np.ndarray, b: np.ndarray, categories: int = 3) -> float:
    """Cohen's kappa with linear disagreement weights |i - j| / (categories - 1)."""
    a, b = np.asarray(a, dtype=int), np.asarray(b, dtype=int)
    if len(a) == 0:
        return float("nan")
    observed = np.zeros((categories, categories))
    np.add.at(observed, (a, b), 1.0)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    index = np.arange(categories)
    weights = np.abs(index[:, None] - index[None, :]) / (categories - 1)
    disagreement_expected = float((weights * expected).sum())
    if disagreement_expected == 0:  # both raters constant and equal: perfect but undefined; call it 0
        return 0.0
    return 1.0 - float((weights * observed).sum()) / disagreement_expected


def _f1(gold: np.ndarray, silver: np.ndarray) -> float:
    tp = int(((gold >= 1) & (silver >= 1)).sum())
    predicted, actual = int((silver >= 1).sum()), int((gold >= 1).sum())
    if tp == 0:
        return 0.0
    precision, recall = tp / predicted, tp / actual
    return 2 * precision * recall / (precision + recall)


class ThresholdScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t1: int
    t2: int
    kappa: float = Field(description="Linearly weighted Cohen's kappa, silver vs gold grade.")
    f1: float = Field(description="F1 of 'grade ≥ 1' (silver as prediction, gold as truth).")
    accuracy: float = Field(description="Exact grade agreement.")


class CalibrationTable(BaseModel):
    """How silver grades agree with gold on the judged pairs; read it next to any silver figure."""

    model_config = ConfigDict(extra="forbid")

    criterion: str
    pairs: int = Field(description="Judged gold pairs (occupation, course) used.")
    pairs_undescribed: int = Field(description="Of those, courses without a description (never graded).")
    gold_grades: dict[int, int]
    mean_gain_by_gold_grade: dict[int, float]
    chosen: ThresholdScore
    confusion: list[list[int]] = Field(description="Rows: gold grade 0/1/2; columns: silver grade 0/1/2.")
    grid: list[ThresholdScore] = Field(description="Every candidate, best first.")

    def markdown(self, top: int = 10) -> str:
        c = self.chosen
        lines = [
            f"Silver thresholds chosen on {self.pairs} judged gold pairs by {self.criterion}: "
            f"**t1 = {c.t1}, t2 = {c.t2}** (weighted κ = {c.kappa:.3f}, F1(grade ≥ 1) = {c.f1:.3f}, "
            f"exact agreement = {c.accuracy:.3f}). {self.pairs_undescribed} judged courses have no "
            "description.",
            "",
            "| gold \\ silver | 0 | 1 | 2 | mean gain |",
            "|---|---|---|---|---|",
        ]
        for g, row in enumerate(self.confusion):
            mean = self.mean_gain_by_gold_grade.get(g, float("nan"))
            lines.append(f"| {g} | " + " | ".join(str(v) for v in row) + f" | {mean:.2f} |")
        lines += ["", "| t1 | t2 | weighted κ | F1 (≥1) | exact |", "|---|---|---|---|---|"]
        for s in self.grid[:top]:
            lines.append(f"| {s.t1} | {s.t2} | {s.kappa:.3f} | {s.f1:.3f} | {s.accuracy:.3f} |")
        return "\n".join(lines) + "\n"


def calibrate_thresholds(
    kb: KnowledgeLike,
    course_skills: Mapping[str, set[str]],
    gold: Qrels,
    *,
    gains: GainMatrix | None = None,
    max_threshold: int = MAX_THRESHOLD,
) -> tuple[int, int, CalibrationTable]:
    """Grid search ``1 ≤ t1 < t2 ≤ max(observed gain + 1, 2)`` for the criterion in the module docstring."""
    matrix = gains or gain_matrix(kb, course_skills)
    pairs = [(occ, cid) for occ in gold.queries() for cid in sorted(gold.judgments[occ])]
    if not pairs:
        raise ValueError("the gold qrels have no judged pairs to calibrate on")
    gold_grades = np.array([min(gold.judgments[o][c], 2) for o, c in pairs], dtype=int)
    pair_gains = matrix.gains_for(pairs)
    described = set(matrix.courses)
    top = min(max(int(pair_gains.max()) + 1, 2), max_threshold)
    grid: list[ThresholdScore] = []
    for t1 in range(1, top):
        for t2 in range(t1 + 1, top + 1):
            silver = grade(pair_gains, t1, t2)
            grid.append(
                ThresholdScore(
                    t1=t1,
                    t2=t2,
                    kappa=weighted_kappa(gold_grades, silver),
                    f1=_f1(gold_grades, silver),
                    accuracy=float((gold_grades == silver).mean()),
                )
            )
    grid.sort(key=lambda s: (-s.kappa, -s.f1, s.t1, s.t2))
    best = grid[0]
    silver = grade(pair_gains, best.t1, best.t2)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (gold_grades, silver), 1)
    table = CalibrationTable(
        criterion=CRITERION,
        pairs=len(pairs),
        pairs_undescribed=sum(c not in described for _, c in pairs),
        gold_grades={g: int((gold_grades == g).sum()) for g in range(3)},
        mean_gain_by_gold_grade={
            g: float(pair_gains[gold_grades == g].mean()) for g in range(3) if (gold_grades == g).any()
        },
        chosen=best,
        confusion=confusion.tolist(),
        grid=grid,
    )
    return best.t1, best.t2, table


class SilverSummary(BaseModel):
    """What ``write_silver`` wrote, for the CLI and the closing note."""

    model_config = ConfigDict(extra="forbid")

    thresholds: tuple[int, int]
    calibrated: bool
    occupations: int = Field(description="Occupations with at least one graded course.")
    pairs_by_grade: dict[int, int]
    courses_with_skills: int
    seconds: float
    files: dict[str, str]


def write_silver(
    qrels: Qrels,
    out_dir: Path,
    *,
    thresholds: tuple[int, int],
    table: CalibrationTable | None,
    courses_with_skills: int,
    seconds: float,
) -> SilverSummary:
    """``silver.qrels`` (TREC), ``silver.parquet``, ``calibration.json``/``.md`` and ``summary.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"trec": out_dir / "silver.qrels", "parquet": out_dir / "silver.parquet"}
    qrels.write_trec(files["trec"])
    qrels.write_parquet(files["parquet"])
    if table is not None:
        files["calibration_json"] = out_dir / "calibration.json"
        files["calibration_md"] = out_dir / "calibration.md"
        files["calibration_json"].write_text(table.model_dump_json(indent=2) + "\n", encoding="utf-8")
        files["calibration_md"].write_text(table.markdown(), encoding="utf-8")
    grades = qrels.to_frame().grade.value_counts()
    summary = SilverSummary(
        thresholds=thresholds,
        calibrated=table is not None,
        occupations=sum(bool(docs) for docs in qrels.judgments.values()),
        pairs_by_grade={g: int(grades.get(g, 0)) for g in (1, 2)},
        courses_with_skills=courses_with_skills,
        seconds=round(seconds, 3),
        files={k: str(v) for k, v in files.items()},
    )
    (out_dir / "summary.json").write_text(
        json.dumps(summary.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
    )
    return summary
