"""(occupation query, course, grade) pairs for the retriever and reranker stages, from the silver qrels.

Leakage rules, checked here and in the tests: training pairs come only from the **train** side of the
occupation split (``split_occupations``, seed 42, the gold occupations pinned to test), so no validation,
test or gold occupation is ever trained on; validation pairs come from the validation side.

Per train occupation (all sampling seeded by ``seed`` and the occupation URI, so an occupation's pairs do
not depend on which other occupations are sampled):

* ``positives`` relevant courses (silver grade ≥ 1) that the query's filters allow;
* ``hard_negatives`` from the first stage's top ``hard_depth`` (``first_stage``: the product's routed dense
  retriever by default, or BM25) that silver does not judge relevant: plausible-looking courses, the
  mistakes a re-ranker is there to fix, drawn from the candidates it will actually see;
* ``random_negatives`` from the rest of the allowed catalog, so scores stay calibrated on easy cases.

Validation is what the re-ranker does at run time: per validation occupation, the first stage's top
``validation_depth`` (with the query's filters) labelled by their silver grade, in first-stage order, with
the first-stage score kept (a re-ranker's blend with it is tuned there).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field
from tqdm.auto import tqdm

from craft.settings import Settings
from training.base import StageConfig

if TYPE_CHECKING:
    from evaluation.qrels import Qrels
    from evaluation.splits import Split
    from knowledge.store import KnowledgeBase
    from tools.retrieval.base import RetrievalQuery, Retriever
    from tools.retrieval.corpus import CourseCorpus

Kind = Literal["positive", "hard", "random", "candidate"]


class PairSampling(StageConfig):
    """How many pairs of which kind; shared by the stages that train on occupation → course pairs."""

    train_queries: int | None = Field(None, ge=1, description="Train occupations sampled; None = all.")
    positives: int = Field(2, ge=1, description="Relevant courses per train occupation.")
    hard_negatives: int = Field(2, ge=0, description="Non-relevant courses from the first stage's top ranks.")
    hard_depth: int = Field(50, ge=1, description="First-stage ranks the hard negatives come from.")
    random_negatives: int = Field(1, ge=0, description="Non-relevant courses drawn from the whole catalog.")
    validation_queries: int | None = Field(100, ge=1, description="Validation occupations; None = all.")
    validation_depth: int = Field(20, ge=1, description="First-stage candidates per validation occupation.")
    first_stage: Literal["bm25", "dense"] = Field(
        "dense",
        description="Retriever the hard negatives and validation candidates come from: the product's "
        "first stage (routed two-view dense, exact) or BM25.",
    )
    target: Literal["graded", "binary"] = Field(
        "graded", description="Label: grade / 2 (0, 0.5, 1) or relevant yes/no (0, 1)."
    )


@dataclass(frozen=True)
class Pair:
    occupation_uri: str
    course_id: str
    query: str
    course: str
    grade: int
    label: float
    kind: Kind
    first_score: float | None = None
    """The first stage's score of a validation candidate (blending the re-ranker with it is tuned on it)."""


@dataclass
class PairSet:
    """Train pairs, validation candidate lists (first-stage order per occupation) and the validation qrels."""

    train: list[Pair]
    validation: list[Pair]
    validation_qrels: Qrels
    split: Split
    thresholds: tuple[int, int] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @cached_property
    def hash(self) -> str:
        """SHA-256 over every pair (texts hashed), so any change of data, split or sampling changes it."""
        h = hashlib.sha256()
        for side, pairs in (("train", self.train), ("validation", self.validation)):
            for p in pairs:
                text = hashlib.sha1(f"{p.query}\x1f{p.course}".encode()).hexdigest()
                h.update(
                    f"{side}|{p.occupation_uri}|{p.course_id}|{p.grade}|{p.label}|{p.kind}|{text}\n".encode()
                )
        return h.hexdigest()

    def summary(self) -> dict[str, object]:
        kinds = {k: sum(p.kind == k for p in self.train) for k in ("positive", "hard", "random")}
        return {
            "train_pairs": len(self.train),
            "train_occupations": len({p.occupation_uri for p in self.train}),
            "train_pairs_by_kind": kinds,
            "validation_pairs": len(self.validation),
            "validation_occupations": len({p.occupation_uri for p in self.validation}),
            "silver_thresholds": list(self.thresholds) if self.thresholds else None,
            "split_seed": self.split.seed,
            "gold_pinned_to_test": len(self.split.pinned_test),
            **self.counts,
        }


def label_of(grade: int, target: str) -> float:
    return float(grade >= 1) if target == "binary" else min(grade, 2) / 2.0


def _rng(seed: int, occupation: str) -> random.Random:
    return random.Random(f"{seed}|{occupation}")


def sample(items: Sequence[str], n: int, rng: random.Random) -> list[str]:
    return list(items) if len(items) <= n else rng.sample(list(items), n)


def build_pairs(
    settings: Settings,
    config: PairSampling,
    *,
    kb: KnowledgeBase | None = None,
    progress: bool = True,
) -> PairSet:
    """Deterministic train/validation pairs from the silver qrels (see the module docstring)."""
    from evaluation.harness import resolve_ground_truth
    from evaluation.splits import split_occupations
    from knowledge.course_skills import load_course_skills
    from knowledge.store import get_knowledge
    from tools.retrieval.corpus import CourseCorpus
    from tools.retrieval.lexical import BM25Retriever
    from tools.retrieval.query import build_query
    from tools.retrieval.registry import course_retriever
    from tools.retrieval.rerank import rerank_query_text

    kb = kb or get_knowledge(settings)
    course_skills = load_course_skills(settings)
    silver, truth, gold = resolve_ground_truth(settings, kb, "silver", course_skills)
    split = split_occupations(kb.occupations, seed=config.seed, pinned_test=gold.queries() if gold else [])
    corpus = CourseCorpus.from_knowledge(kb)
    first: Retriever = (
        BM25Retriever(corpus)
        if config.first_stage == "bm25"
        else course_retriever(settings, corpus, exact=True, progress=progress)
    )

    train_side = [o for o in split.train if silver.has_relevant(o)]
    validation_side = [o for o in split.validation if silver.has_relevant(o)]
    train_occupations = _subset(train_side, config.train_queries, config.seed)
    validation_occupations = _subset(validation_side, config.validation_queries, config.seed)

    def text_of(course_id: str) -> str:
        return corpus.texts[corpus.position[course_id]]

    queries = {occ: build_query(kb, occ) for occ in [*train_occupations, *validation_occupations]}
    prime = getattr(first, "prime", None)
    if prime is not None:  # dense: encode every query in large batches first
        prime(list(queries.values()))

    train: list[Pair] = []
    for occ in tqdm(train_occupations, desc="train pairs", unit="occ", disable=not progress):
        query = queries[occ]
        qtext = rerank_query_text(query)
        rng = _rng(config.seed, occ)
        allowed = _allowed(corpus, query)
        relevant = silver.relevant(occ)
        positives = sample([c for c in sorted(relevant) if c in allowed], config.positives, rng)
        if not positives:
            continue
        chosen = set(positives)
        hits = (
            [h.course_id for h in first.retrieve(query, config.hard_depth)] if config.hard_negatives else []
        )
        hard = sample([c for c in hits if c not in relevant], config.hard_negatives, rng)
        chosen |= set(hard)
        rand = _random_negatives(corpus, allowed, relevant, chosen, config.random_negatives, rng)
        for kind, ids in (("positive", positives), ("hard", hard), ("random", rand)):
            for cid in ids:
                grade = relevant.get(cid, 0)
                train.append(
                    Pair(occ, cid, qtext, text_of(cid), grade, label_of(grade, config.target), kind)  # type: ignore[arg-type]
                )

    validation: list[Pair] = []
    for occ in tqdm(validation_occupations, desc="validation pairs", unit="occ", disable=not progress):
        query = queries[occ]
        qtext = rerank_query_text(query)
        relevant = silver.relevant(occ)
        for hit in first.retrieve(query, config.validation_depth):
            grade = relevant.get(hit.course_id, 0)
            validation.append(
                Pair(
                    occ,
                    hit.course_id,
                    qtext,
                    text_of(hit.course_id),
                    grade,
                    label_of(grade, config.target),
                    "candidate",
                    hit.score,
                )
            )

    check_no_leakage(train, validation, split)
    return PairSet(
        train=train,
        validation=validation,
        validation_qrels=silver.restrict(validation_occupations),
        split=split,
        thresholds=truth.thresholds,
        counts={
            "train_side_occupations": len(train_side),
            "validation_side_occupations": len(validation_side),
        },
    )


def _subset(occupations: list[str], n: int | None, seed: int) -> list[str]:
    """A seeded sample of at most ``n`` occupations, sorted (all of them for ``None``)."""
    if n is None or len(occupations) <= n:
        return list(occupations)
    return sorted(random.Random(seed).sample(occupations, n))


def _allowed(corpus: CourseCorpus, query: RetrievalQuery) -> set[str]:
    mask = corpus.mask(query.filters)
    return {corpus.ids[i] for i in np.flatnonzero(mask)}


def _random_negatives(
    corpus: CourseCorpus,
    allowed: set[str],
    relevant: dict[str, int],
    chosen: set[str],
    n: int,
    rng: random.Random,
) -> list[str]:
    """``n`` allowed, non-relevant, not yet chosen courses (pool in catalog order: stable draws)."""
    if n <= 0:
        return []
    pool = [cid for cid in corpus.ids if cid in allowed and cid not in relevant and cid not in chosen]
    return sample(pool, n, rng)


class Leakage(RuntimeError):
    """A pair from the wrong side of the occupation split: never train on it."""


def check_no_leakage(train: Sequence[Pair], validation: Sequence[Pair], split: Split) -> None:
    """Train pairs only from train occupations, validation only from validation ones: raise otherwise."""
    train_side, validation_side = set(split.train), set(split.validation)
    bad = {p.occupation_uri for p in train} - train_side
    if bad:
        raise Leakage(f"{len(bad)} non-train occupations in the training pairs, e.g. {sorted(bad)[:3]}")
    bad = {p.occupation_uri for p in validation} - validation_side
    if bad:
        raise Leakage(f"{len(bad)} non-validation occupations in validation, e.g. {sorted(bad)[:3]}")
