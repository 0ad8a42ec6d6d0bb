"""Relevance judgments (qrels): occupation URI -> {course id: grade}, in TREC and parquet form.

The human gold set names courses by source, title and URL, not by our ids; ``load_gold`` maps it onto the
catalog and reports every judgment it could not place instead of dropping it silently.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings
from knowledge.courses.catalog import normalize_url
from knowledge.courses.schema import normalize_title


class Qrels(BaseModel):
    """Graded judgments; grade 0 entries are kept: they mark a course as judged (``judged_share_at_k``)."""

    model_config = ConfigDict(extra="forbid")

    judgments: dict[str, dict[str, int]] = Field(default_factory=dict)

    def queries(self) -> list[str]:
        return sorted(self.judgments)

    def relevant(self, query: str, min_grade: int = 1) -> dict[str, int]:
        return {doc: grade for doc, grade in self.judgments.get(query, {}).items() if grade >= min_grade}

    def has_relevant(self, query: str, min_grade: int = 1) -> bool:
        return bool(self.relevant(query, min_grade))

    def restrict(self, queries: list[str] | set[str]) -> Qrels:
        """Only the given queries (e.g. one split's occupations)."""
        wanted = set(queries)
        return Qrels(judgments={q: dict(docs) for q, docs in self.judgments.items() if q in wanted})

    def __len__(self) -> int:
        return sum(len(docs) for docs in self.judgments.values())

    # --- tabular form ----------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        rows = [
            (query, doc, grade)
            for query in self.queries()
            for doc, grade in sorted(self.judgments[query].items())
        ]
        return pd.DataFrame(rows, columns=["occupation_uri", "course_id", "grade"]).astype(
            {"occupation_uri": str, "course_id": str, "grade": "int64"}
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Qrels:
        """Columns occupation_uri, course_id, grade; a pair listed twice keeps its highest grade."""
        judgments: dict[str, dict[str, int]] = defaultdict(dict)
        for query, doc, grade in zip(frame.occupation_uri, frame.course_id, frame.grade, strict=True):
            judgments[str(query)][str(doc)] = max(int(grade), judgments[str(query)].get(str(doc), int(grade)))
        return cls(judgments=dict(judgments))

    # --- TREC ------------------------------------------------------------------------------------
    def write_trec(self, path: Path) -> None:
        """``occupation_uri 0 course_id grade`` per line, sorted, so files diff cleanly."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{q} 0 {d} {g}\n" for q, d, g in self.to_frame().itertuples(index=False)]
        path.write_text("".join(lines), encoding="utf-8")

    @classmethod
    def read_trec(cls, path: Path) -> Qrels:
        """Whitespace-separated ``query iteration doc grade``; the iteration column is ignored."""
        rows: list[tuple[str, str, int]] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 4:
                raise ValueError(f"{path}:{number}: expected 4 columns 'query 0 doc grade', got {line!r}")
            try:
                grade = int(float(parts[3]))
            except ValueError as error:
                raise ValueError(f"{path}:{number}: grade {parts[3]!r} is not a number") from error
            rows.append((parts[0], parts[2], grade))
        return cls.from_frame(pd.DataFrame(rows, columns=["occupation_uri", "course_id", "grade"]))

    # --- parquet ---------------------------------------------------------------------------------
    def write_parquet(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_parquet(path, index=False)

    @classmethod
    def read_parquet(cls, path: Path) -> Qrels:
        return cls.from_frame(pd.read_parquet(path, columns=["occupation_uri", "course_id", "grade"]))


def load_external(path: Path) -> Qrels:
    """Any qrels file as an alternative ground truth: parquet by suffix, otherwise TREC text."""
    path = Path(path)
    if path.suffix == ".parquet":
        return Qrels.read_parquet(path)
    return Qrels.read_trec(path)


# --- the human gold set -----------------------------------------------------------------------------

GOLD_FILE = "dev_judgments.jsonl"


class GoldJudgment(BaseModel):
    """One line of ``dev_judgments.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    occupation_uri: str
    occupation: str
    source: str
    url: str | None = None
    title: str
    grade: int = Field(ge=0)


class SourceCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    judgments: int = 0
    matched: int = 0
    by_title: int = 0
    by_url: int = 0


class GoldReport(BaseModel):
    """How the gold judgments landed on the catalog; read it next to any gold figure."""

    model_config = ConfigDict(extra="forbid")

    judgments: int
    matched: int
    unmatched: int
    by_title: int
    by_url: int
    ambiguous_titles: int = Field(
        description="Judgments whose title named several catalog courses of the source and whose URL did not "
        "pick one: all of them get the grade (identical titles are indistinguishable to a title-based judge)."
    )
    conflicts: int = Field(
        description="Courses judged more than once for an occupation with different grades."
    )
    occupations: int
    qrels_pairs: int = Field(description="Distinct (occupation, course id) pairs in the resulting qrels.")
    per_source: dict[str, SourceCounts]
    unmatched_examples: list[GoldJudgment]

    def summary(self) -> str:
        parts = ", ".join(f"{s} {c.matched}/{c.judgments}" for s, c in sorted(self.per_source.items()))
        return (
            f"gold: {self.matched}/{self.judgments} judgments matched ({self.by_title} by title, "
            f"{self.by_url} by URL; {parts}); {self.unmatched} unmatched, {self.ambiguous_titles} ambiguous, "
            f"{self.conflicts} grade conflicts"
        )


def _record_sources(course_id: str, source: str, also_in: object) -> set[str]:
    """A merged record stands for its duplicates too; their source is the prefix of their id."""
    sources = {source, course_id.split(":", 1)[0]}
    for other in list(also_in) if also_in is not None else []:
        sources.add(str(other).split(":", 1)[0])
    return sources


def default_gold_path(settings: Settings) -> Path:
    """``$CRAFT_GOLD_DIR/dev_judgments.jsonl``, else the ``gold/`` folder beside the data dir
    (``../shared/gold`` next to ``../shared/data``)."""
    folder = os.environ.get("CRAFT_GOLD_DIR")
    base = Path(folder) if folder else Path(settings.data_dir).parent / "gold"
    return base / GOLD_FILE


def read_gold(gold_path: Path) -> list[GoldJudgment]:
    lines = Path(gold_path).read_text(encoding="utf-8").splitlines()
    return [GoldJudgment.model_validate(json.loads(line)) for line in lines if line.strip()]


def load_gold(gold_path: Path, courses: pd.DataFrame, examples: int = 20) -> tuple[Qrels, GoldReport]:
    """Gold judgments as qrels over catalog ids.

    Matching, in order: normalized title within the judgment's source (a merged record counts for every
    source in ``also_in``), narrowed by URL when the title is ambiguous; then the normalized URL in any source
    (catalog dedup keeps only the first record's URL). A course judged twice for one occupation (e.g. the
    Coursera and the Coachable listing of one course, merged into one record) keeps the highest grade.
    """
    by_title: dict[tuple[str, str], list[str]] = defaultdict(list)
    by_url: dict[str, list[str]] = defaultdict(list)
    url_of: dict[str, str | None] = {}
    for cid, source, title, url, also_in in zip(
        courses.id, courses.source, courses.title, courses.url, courses.also_in, strict=True
    ):
        key = normalize_title(str(title))
        for name in _record_sources(cid, source, also_in):
            by_title[(name, key)].append(cid)
        norm = normalize_url(url if isinstance(url, str) else None)
        url_of[cid] = norm
        if norm:
            by_url[norm].append(cid)

    judgments = read_gold(gold_path)
    grades: dict[str, dict[str, int]] = defaultdict(dict)
    conflicts = 0
    per_source: dict[str, SourceCounts] = defaultdict(SourceCounts)
    unmatched: list[GoldJudgment] = []
    n_title = n_url = n_ambiguous = 0
    for judgment in judgments:
        counts = per_source[judgment.source]
        counts.judgments += 1
        url = normalize_url(judgment.url)
        ids = sorted(set(by_title.get((judgment.source, normalize_title(judgment.title)), [])))
        how = "title"
        if len(ids) > 1:
            ids = [cid for cid in ids if url and url_of[cid] == url] or ids
            n_ambiguous += len(ids) > 1
        if not ids and url:
            ids = sorted(set(by_url.get(url, [])))
            how = "url"
        if not ids:
            unmatched.append(judgment)
            continue
        counts.matched += 1
        if how == "title":
            counts.by_title += 1
            n_title += 1
        else:
            counts.by_url += 1
            n_url += 1
        for cid in ids:
            previous = grades[judgment.occupation_uri].get(cid)
            if previous is not None and previous != judgment.grade:
                conflicts += 1
            grades[judgment.occupation_uri][cid] = max(judgment.grade, previous or 0)

    qrels = Qrels(judgments=dict(grades))
    report = GoldReport(
        judgments=len(judgments),
        matched=n_title + n_url,
        unmatched=len(unmatched),
        by_title=n_title,
        by_url=n_url,
        ambiguous_titles=n_ambiguous,
        conflicts=conflicts,
        occupations=len({j.occupation_uri for j in judgments}),
        qrels_pairs=len(qrels),
        per_source=dict(per_source),
        unmatched_examples=unmatched[:examples],
    )
    return qrels, report
