"""``craft eval``: replay the occupations of one split through every named system and write the report.

Conventions (also written to ``run.json`` next to the report):

- Queries are ``build_query(kb, occupation, lang=lang)``: English by default, no user skills (the whole
  occupation profile is the gap), default filters (described courses; English, plus the query language for
  ``--lang de``). Every system sees the same query objects. ``--lang de`` asks in German against the same
  (English) judgments: the cross-lingual check.
- Ground truth ``gold`` is the human development set; ``silver`` is built from course skills with thresholds
  calibrated on gold (``evaluation.silver``); a path loads any external qrels. The split is by occupation
  (``split_occupations``, seed 42) with the gold occupations pinned to test, so they are in silver-test too;
  gold is reported by its own run.
- ``--split-by row`` reproduces the published CRAFT split for comparison only: the (occupation, course)
  qrels rows are shuffled (seed 42) and cut 0.8/0.1/0.1 (``craft_row_split``); the queries are the
  occupations with a relevant row on the chosen side, judged only against that side's rows. The same
  occupation then sits in train and test (``run.json`` counts them as ``leaked_occupations``), which inflates
  test figures.
- ``--max-queries`` takes a seeded random sample (seed 42) of the split's scorable occupations.
- Latency is the wall time of ``retrieve`` per query after one untimed warm-up query (index building and
  lazy loading are not counted; ``+cov`` includes its base retrieval at depth 50).
- Intra-list diversity uses TF-IDF vectors of the course texts for every system, also when a dense encoder
  is loaded, so the figure means the same thing in runs with and without one.
- Catalog coverage is over the retrievable catalog (described English courses); out-of-catalog over all ids.
- Systems: ``bm25``, ``tfidf``, ``random``, ``popularity``, ``dense`` (the pretrained baseline: exact cosine
  of the profile query with one encoder, default the English MiniLM; skipped with a message when it cannot be
  loaded), ``dense-views`` (same encoder, profile + occupation query views summed), ``routed`` (the product's
  dense retrieval: two views, the encoder chosen per language by ``Settings.course_encoders``), ``hybrid``
  (the product's retriever: BM25 + ``routed`` by reciprocal-rank fusion), and ``<system>+cov`` for
  gap-coverage re-ranking of the system's top 50. ``+cov`` reads the same course skills the silver set is
  built from: on silver it is favoured by construction, so judge it on gold. ``<system>+ce`` re-ranks the
  system's top 20 with the trained cross-encoder (``craft train reranker``; e.g. ``routed+ce``), skipped
  with a message when none is trained; ``<system>+ce+cov`` applies coverage re-ranking after it.
  ``<system>+llm`` re-ranks the system's top 20 with the trained LLM ranker (``craft train llm-ranker``:
  SmolLM2 + LoRA, pointwise P(Yes)), skipped with a message when none is trained.
  ``routed-ft`` is ``routed`` with the trained course retriever (``craft train retriever``) in place of the
  encoder it was fine-tuned from (``with_trained_retriever``), skipped with a message when none is trained.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from craft.settings import Settings
from evaluation.baselines import PopularityRetriever, RandomRetriever
from evaluation.metrics import (
    catalog_coverage,
    evaluate_run,
    gap_coverage_at_k,
    intra_list_diversity,
    latency_summary,
    out_of_catalog_rate,
)
from evaluation.qrels import GoldReport, Qrels, default_gold_path, load_external, load_gold
from evaluation.report import SystemResult, system_result, write_report
from evaluation.silver import DEFAULT_THRESHOLDS, build_silver, calibrate_thresholds, gain_matrix
from evaluation.splits import FRACTIONS, craft_row_split, leaked_occupations, split_occupations
from evaluation.stats import paired_randomization_test
from knowledge.course_skills import load_course_skills
from knowledge.store import KnowledgeBase, get_knowledge
from tools.retrieval.base import Filters, RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.dense import VIEWS, View
from tools.retrieval.diversity import coverage_rerank
from tools.retrieval.filters import default_languages
from tools.retrieval.hybrid import HybridRetriever
from tools.retrieval.lexical import BM25Retriever, TfidfRetriever
from tools.retrieval.query import build_query
from tools.retrieval.registry import dense_retriever, routed_dense, with_trained_retriever

BASE_SYSTEMS = (
    "bm25",
    "tfidf",
    "random",
    "popularity",
    "dense",
    "dense-views",
    "routed",
    "routed-ft",
    "hybrid",
)
COVERAGE_SUFFIX = "+cov"
CROSS_ENCODER_SUFFIX = "+ce"
LLM_SUFFIX = "+llm"
RERANK_DEPTH = 50
HYBRID_DEPTH = 100
SEED = 42
LANG = "en"
LANGS = ("en", "de")
Split = Literal["train", "validation", "test", "all"]
SplitBy = Literal["occupation", "row"]
SPLIT_BY = ("occupation", "row")
ROW_SPLIT_WARNING = (
    "WARNING: row split (CRAFT's protocol): the (occupation, course) rows are split at random, so the same "
    "occupation is in train and test; figures are inflated and for comparison only"
)
NOTES = [
    "queries: build_query(kb, occupation, lang), no user skills, default filters (described; query language "
    "+ English)",
    "latency: wall time of retrieve per query after one untimed warm-up; +cov includes its base at depth 50",
    "ild@k: mean pairwise cosine distance of TF-IDF course vectors, for every system",
    "catalog coverage over described English courses; out-of-catalog rate over all catalog ids",
    "+cov reads the course skills the silver set is built from: favoured on silver by construction",
    "max_queries: seeded random sample (seed 42) of the split's scorable occupations",
]


class SystemUnavailable(RuntimeError):
    """A system that cannot run in this environment (e.g. no encoder); the run goes on without it."""


def base_system(name: str) -> str:
    """``routed`` for ``routed``, ``routed+ce``, ``routed+cov`` and ``routed+ce+cov``."""
    return name.removesuffix(COVERAGE_SUFFIX).removesuffix(CROSS_ENCODER_SUFFIX).removesuffix(LLM_SUFFIX)


AGENT = "agent"  # the advisor replayed as scripted conversations (evaluation.through_agent)


def stated_skills(kb: KnowledgeBase, occupation: str, n: int, lang: str = LANG) -> set[str]:
    """The first ``n`` essential skills (ESCO order) whose label reads as one list item (no comma, "and",
    "or"): the skills a replayed user says they have, removed from the gap of the direct path alike."""
    chosen: list[str] = []
    if n <= 0:
        return set()
    for uri, relation in kb.occupation_skills.get(occupation, []):
        label = kb.skills[uri].label(lang)
        if relation == "essential" and not re.search(r",|\b(?:and|or|und|oder)\b", label):
            chosen.append(uri)
        if len(chosen) == n:
            break
    return set(chosen)


def known_system(name: str) -> bool:
    if name == AGENT:
        return True
    once = name.count(COVERAGE_SUFFIX) <= 1 and name.count(CROSS_ENCODER_SUFFIX) <= 1
    once = once and name.count(LLM_SUFFIX) <= 1
    return base_system(name) in BASE_SYSTEMS and once


class CoverageReranked(Retriever):
    """A base system's top ``depth`` re-ranked for gap coverage (``coverage_rerank``)."""

    def __init__(
        self, base: Retriever, course_skills: dict[str, set[str]], depth: int = RERANK_DEPTH
    ) -> None:
        self.base, self.course_skills, self.depth = base, course_skills, depth
        self.name = base.name + COVERAGE_SUFFIX

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        hits = self.base.retrieve(query, max(self.depth, k))
        return coverage_rerank(hits, self.course_skills, query.gap, k)


class SystemFactory:
    """Builds each system once per run; ``bm25``, ``hybrid`` and the ``+cov`` variants share indexes."""

    def __init__(
        self,
        settings: Settings,
        kb: KnowledgeBase,
        corpus: CourseCorpus,
        course_skills: dict[str, set[str]],
        dense_model: str | None = None,
        console: Console | None = None,
    ) -> None:
        self.settings, self.kb, self.corpus, self.course_skills = settings, kb, corpus, course_skills
        self.dense_model = dense_model or settings.english_model
        self.console = console
        self.reranker: str | None = None
        self.llm_ranker: str | None = None
        self.retriever: str | None = None
        self._built: dict[str, Retriever] = {}

    def get(self, name: str) -> Retriever:
        if not known_system(name):
            raise ValueError(
                f"unknown system {name!r}; known: {', '.join(BASE_SYSTEMS)} (+ce, +llm, +cov variants)"
            )
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    def _build(self, name: str) -> Retriever:
        if name.endswith(COVERAGE_SUFFIX):
            return CoverageReranked(self.get(name.removesuffix(COVERAGE_SUFFIX)), self.course_skills)
        if name.endswith(CROSS_ENCODER_SUFFIX):
            return self._cross_encoder(name.removesuffix(CROSS_ENCODER_SUFFIX))
        if name.endswith(LLM_SUFFIX):
            return self._llm_ranker(name.removesuffix(LLM_SUFFIX))
        if name == AGENT:
            from evaluation.through_agent import AgentReplay

            return AgentReplay(self.settings, self.kb)
        if name == "bm25":
            return BM25Retriever(self.corpus)
        if name == "tfidf":
            return TfidfRetriever(self.corpus)
        if name == "random":
            return RandomRetriever(self.corpus.courses, seed=SEED)
        if name == "popularity":
            return PopularityRetriever(self.corpus.courses)
        if name == "dense":
            return self._dense(self.dense_model, ("profile",), name)
        if name == "dense-views":
            return self._dense(self.dense_model, VIEWS, name)
        if name == "routed":
            return self._routed()
        if name == "routed-ft":
            return self._routed_finetuned()
        if name == "hybrid":
            try:
                routed = self.get("routed")
            except SystemUnavailable as error:
                raise SystemUnavailable(f"hybrid needs routed dense retrieval: {error}") from error
            return HybridRetriever([self.get("bm25"), routed], depth=HYBRID_DEPTH)
        raise ValueError(f"unknown system {name!r}")

    def _dense(self, model: str, views: tuple[View, ...], name: str) -> Retriever:
        self._check_encoder(model)
        if self.console:
            self.console.print(f"{name}: embedding the described courses with {model} (cached)…")
        return dense_retriever(
            self.settings, self.corpus, model, exact=True, views=views, name=name, progress=f"{name}: courses"
        )

    def _cross_encoder(self, base: str) -> Retriever:
        """``base``'s top 20 re-ranked by the newest trained reranker; no reranker: ``SystemUnavailable``."""
        from tools.retrieval.rerank import RerankerMissing, resolve_reranker, trained_cross_encoder

        try:
            resolve_reranker(self.settings)
        except RerankerMissing as error:
            raise SystemUnavailable(str(error)) from error
        try:
            first = self.get(base)
        except SystemUnavailable as error:
            raise SystemUnavailable(f"{base}{CROSS_ENCODER_SUFFIX} needs {base}: {error}") from error
        ranker = trained_cross_encoder(first, self.corpus, self.settings)
        self.reranker = ranker.model_name
        return ranker

    def _llm_ranker(self, base: str) -> Retriever:
        """``base``'s top 20 re-ranked by the newest trained LLM ranker; none: ``SystemUnavailable``."""
        from tools.retrieval.llm_rank import LLMRankerMissing, resolve_llm_ranker, trained_llm_ranker

        try:
            resolve_llm_ranker(self.settings)
        except LLMRankerMissing as error:
            raise SystemUnavailable(str(error)) from error
        try:
            first = self.get(base)
        except SystemUnavailable as error:
            raise SystemUnavailable(f"{base}{LLM_SUFFIX} needs {base}: {error}") from error
        ranker = trained_llm_ranker(first, self.corpus, self.settings)
        self.llm_ranker = ranker.model_name
        return ranker

    def _routed(self) -> Retriever:
        """Every encoder of ``course_encoders`` must load; each builds its index on its first query."""
        for model in self.settings.course_encoders.values():
            self._check_encoder(model)
        return routed_dense(self.settings, self.corpus, exact=True, progress=self.console is not None)

    def _routed_finetuned(self) -> Retriever:
        """``routed`` with the newest trained retriever on its base model's route (none: unavailable)."""
        from knowledge.models import ModelMissing

        try:
            encoders = with_trained_retriever(self.settings)
        except (ModelMissing, LookupError) as error:
            raise SystemUnavailable(f"routed-ft: {error}") from error
        for model in encoders.values():
            self._check_encoder(model)
        self.retriever = next(m for m in encoders.values() if m not in self.settings.course_encoders.values())
        settings = self.settings.model_copy(update={"course_encoders": encoders})
        return routed_dense(
            settings, self.corpus, exact=True, progress=self.console is not None, name="routed-ft"
        )

    def _check_encoder(self, model: str) -> None:
        from knowledge.encoders import get_encoder

        try:
            get_encoder(model, self.settings)
        except Exception as error:  # missing model folder, missing package, bad manifest: all mean "skip"
            raise SystemUnavailable(
                f"encoder {model!r} cannot be loaded ({type(error).__name__}: {error}); "
                f"prepare it with `craft models prepare {model}`"
            ) from error


class TfidfRows(Mapping[str, np.ndarray]):
    """Course id → dense TF-IDF row, materialized on access (the full matrix would not fit densely)."""

    def __init__(self, corpus: CourseCorpus, matrix: sp.csr_matrix) -> None:
        self.position, self.matrix = corpus.position, matrix.tocsr()

    def __getitem__(self, course_id: str) -> np.ndarray:
        return self.matrix[self.position[course_id]].toarray().ravel()

    def __iter__(self) -> Iterator[str]:
        return iter(self.position)

    def __len__(self) -> int:
        return len(self.position)


class GroundTruth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    thresholds: tuple[int, int] | None = None
    calibration_kappa: float | None = None


class RunInfo(BaseModel):
    """Everything needed to reproduce or read a report; written as ``run.json``."""

    model_config = ConfigDict(extra="forbid")

    ground_truth: GroundTruth
    split: str
    lang: str = Field(default=LANG, description="Query language (courses: that language plus English).")
    split_by: str = Field(
        default="occupation",
        description="'occupation' (ours: whole occupations per side) or 'row' (CRAFT's random row split).",
    )
    leaked_occupations: int = Field(
        default=0,
        description="Test occupations that also have qrels rows in train (0 for the occupation split).",
    )
    k: int
    seed: int
    queries: int
    split_occupations: int = Field(
        description="Occupations on the split side (all qrels queries for 'all'; with a row split, the "
        "occupations with any row on the side)."
    )
    without_relevant: int = Field(
        description="Split occupations without any relevant course in the ground truth (not scored)."
    )
    not_in_kb: int = Field(description="Qrels occupations unknown to the knowledge base (dropped).")
    max_queries: int | None
    systems: list[str]
    skipped: dict[str, str]
    dense_model: str | None
    course_encoders: dict[str, str] | None = Field(
        default=None, description="Language → encoder of the routed systems (``routed``, ``hybrid``)."
    )
    reranker: str | None = Field(default=None, description="Trained cross-encoder of the ``+ce`` systems.")
    llm_ranker: str | None = Field(default=None, description="Trained LLM ranker of the ``+llm`` systems.")
    retriever: str | None = Field(default=None, description="Trained course encoder of ``routed-ft``.")
    catalog_size: int
    seconds: float
    notes: list[str]


def resolve_ground_truth(
    settings: Settings,
    kb: KnowledgeBase,
    ground_truth: str | Path,
    course_skills: dict[str, set[str]],
    console: Console | None = None,
) -> tuple[Qrels, GroundTruth, Qrels | None]:
    """(qrels, description, gold qrels or None): the gold set also pins its occupations to test."""
    gold_path = default_gold_path(settings)
    gold: Qrels | None = None
    gold_report: GoldReport | None = None
    if gold_path.is_file():
        gold, gold_report = load_gold(gold_path, kb.courses)
    if ground_truth == "gold":
        if gold is None or gold_report is None:
            raise FileNotFoundError(f"gold judgments not found at {gold_path} (set CRAFT_GOLD_DIR)")
        description = (
            f"gold (human development set, {gold_report.occupations} occupations, {gold_report.qrels_pairs} "
            "judged pairs pooled from BM25 + MiniLM; unjudged = 0)"
        )
        return gold, GroundTruth(name="gold", description=description), gold
    if ground_truth == "silver":
        gains = gain_matrix(kb, course_skills)
        if gold is not None:
            t1, t2, table = calibrate_thresholds(kb, course_skills, gold, gains=gains)
            kappa: float | None = table.chosen.kappa
            how = f"calibrated on gold, weighted κ {table.chosen.kappa:.3f}"
        else:
            (t1, t2), kappa = DEFAULT_THRESHOLDS, None
            how = "default thresholds, no gold set to calibrate on"
            if console:
                console.print(f"[yellow]silver: no gold set at {gold_path}; default thresholds {t1}/{t2}")
        silver = build_silver(kb, course_skills, thresholds=(t1, t2), gains=gains)
        description = (
            f"silver (skill coverage, gain = 2·essential + 1·optional; grade 1 if gain ≥ {t1}, 2 if ≥ {t2}; "
            f"{how})"
        )
        return (
            silver,
            GroundTruth(name="silver", description=description, thresholds=(t1, t2), calibration_kappa=kappa),
            gold,
        )
    path = Path(ground_truth)
    if not path.is_file():
        raise FileNotFoundError(f"ground truth {ground_truth!r} is neither gold, silver nor a qrels file")
    qrels = load_external(path)
    return qrels, GroundTruth(name=path.name, description=f"external qrels {path}"), gold


def row_split_qrels(qrels: Qrels, split: Split) -> tuple[Qrels, int]:
    """CRAFT's row split of the qrels (for comparison only): the chosen side's rows and the leakage.

    All qrels rows (grade-0 judgments too) are split with ``craft_row_split`` (seed 42, 0.8/0.1/0.1); the
    leakage is the number of test occupations that also have rows in train, whatever side is evaluated.
    """
    frame = qrels.to_frame()
    train, validation, test = craft_row_split(frame, seed=SEED, fractions=FRACTIONS)
    sides = {"train": train, "validation": validation, "test": test, "all": frame}
    if split not in sides:
        raise ValueError(f"unknown split {split!r}: train, validation, test or all")
    return Qrels.from_frame(sides[split]), len(leaked_occupations(train, test))


def occupation_split_leakage(kb: KnowledgeBase, qrels: Qrels, pinned: Sequence[str]) -> int:
    """Test occupations with qrels rows in train under our occupation split: 0 by construction, checked."""
    frame = qrels.to_frame()
    split = split_occupations(kb.occupations, pinned_test=pinned)
    train = frame[frame.occupation_uri.isin(split.train)]
    test = frame[frame.occupation_uri.isin(split.test)]
    return len(leaked_occupations(train, test))


def select_queries(
    kb: KnowledgeBase,
    qrels: Qrels,
    split: Split,
    pinned: Sequence[str],
    max_queries: int | None,
) -> tuple[list[str], dict[str, int]]:
    """The scorable occupations of the split (and their sample), with counts of what was left out.

    For a row split, pass the side's qrels (``row_split_qrels``) with ``split="all"``: its side is then
    every occupation with a row in it.
    """
    if split == "all":
        side = set(qrels.queries())
    else:
        side = set(split_occupations(kb.occupations, pinned_test=pinned).side(split))
    judged = [q for q in qrels.queries() if q in side]
    known = [q for q in judged if q in kb.occupations]
    scorable = [q for q in known if qrels.has_relevant(q)]
    counts = {
        "split_occupations": len(side),
        "not_in_kb": len(judged) - len(known),
        "without_relevant": len(side) - len(scorable) - (len(judged) - len(known)),
    }
    if max_queries is not None and len(scorable) > max_queries:
        scorable = sorted(random.Random(SEED).sample(scorable, max_queries))
    return scorable, counts


def run_eval(
    settings: Settings,
    ground_truth: str | Path = "gold",
    split: Split = "test",
    k: int = 10,
    systems: Sequence[str] = ("bm25", "tfidf", "random", "popularity"),
    out_dir: Path = Path("var/eval"),
    max_queries: int | None = None,
    *,
    split_by: SplitBy = "occupation",
    lang: str = LANG,
    baseline: str | None = None,
    dense_model: str | None = None,
    console: Console | None = None,
    have_skills: int = 0,
) -> list[SystemResult]:
    """Evaluate ``systems`` on one ground truth and split; writes the report into ``out_dir``.

    ``split_by="row"`` reproduces CRAFT's leaking row split for comparison only (see the module notes);
    ``baseline`` is the system every other one is tested against (default BM25).
    """
    started = time.perf_counter()
    if lang not in LANGS:
        raise ValueError(f"unknown lang {lang!r}: {' or '.join(LANGS)}")
    if split_by not in SPLIT_BY:
        raise ValueError(f"unknown split_by {split_by!r}: occupation or row")
    unknown = [s for s in systems if not known_system(s)]
    if unknown:
        raise ValueError(
            f"unknown systems {unknown}; known: {', '.join(BASE_SYSTEMS)}, <system>+ce and <system>+cov"
        )
    if not systems:
        raise ValueError("no systems to evaluate")
    kb = get_knowledge(settings)
    course_skills = load_course_skills(settings)
    qrels, truth, gold = resolve_ground_truth(settings, kb, ground_truth, course_skills, console)
    pinned = gold.queries() if gold else []
    if split_by == "row":
        qrels, leaked = row_split_qrels(qrels, split)
        queries, counts = select_queries(kb, qrels, "all", [], max_queries)
        if console:
            console.print(f"[yellow]{ROW_SPLIT_WARNING} ({leaked} test occupations also in train)")
    else:
        leaked = occupation_split_leakage(kb, qrels, pinned)
        queries, counts = select_queries(kb, qrels, split, pinned, max_queries)
    if not queries:
        raise ValueError(
            f"no occupation of split {split!r} (by {split_by}) has a relevant course in {truth.name}"
        )
    qrels = qrels.restrict(queries)
    built = {
        occ: build_query(kb, occ, stated_skills(kb, occ, have_skills, lang), lang=lang) for occ in queries
    }

    corpus = CourseCorpus.from_knowledge(kb)
    factory = SystemFactory(settings, kb, corpus, course_skills, dense_model, console)
    catalog_size = int(np.count_nonzero(corpus.mask(Filters(languages=default_languages(lang)))))
    catalog_ids = set(corpus.ids)
    essential = {
        occ: [s for s, relation in kb.occupation_skills.get(occ, []) if relation == "essential"]
        for occ in queries
    }
    tfidf = factory.get("tfidf")
    assert isinstance(tfidf, TfidfRetriever)
    vectors = TfidfRows(corpus, tfidf.matrix)

    results: list[SystemResult] = []
    skipped: dict[str, str] = {}
    replay_stats: dict[str, object] | None = None
    for name in dict.fromkeys(systems):
        try:
            retriever = factory.get(name)
        except SystemUnavailable as error:
            skipped[name] = str(error)
            if console:
                console.print(f"[yellow]skipping {name}:[/yellow] {error}")
            continue
        retriever.retrieve(built[queries[0]], k)  # warm-up, untimed
        run: dict[str, list[tuple[str, float]]] = {}
        seconds: list[float] = []
        for occ in queries:
            tick = time.perf_counter()
            hits = retriever.retrieve(built[occ], k)
            seconds.append(time.perf_counter() - tick)
            run[occ] = [(h.course_id, h.score) for h in hits]
        if name == AGENT:
            replay_stats = retriever.stats.summary()  # type: ignore[attr-defined]
            retriever.close()  # type: ignore[attr-defined]
        evaluation = evaluate_run(qrels, run, k)
        ooc = out_of_catalog_rate(run, catalog_ids, k)
        if ooc > 0 and console:
            console.print(f"[red]{name}: out-of-catalog rate {ooc:.4f} (must be 0)[/red]")
        results.append(
            system_result(
                name,
                evaluation,
                latency=latency_summary(seconds),
                beyond={
                    f"catalog_coverage@{k}": catalog_coverage(run, catalog_size, k),
                    "out_of_catalog_rate": ooc,
                },
                per_query_extra={
                    f"gap_coverage@{k}": gap_coverage_at_k(run, essential, course_skills, k),
                    f"ild@{k}": intra_list_diversity(run, vectors, k),
                },
            )
        )
        if console:
            console.print(f"{name}: nDCG@{k} {results[-1].means[f'ndcg@{k}']:.3f} ({len(queries)} queries)")
    if not results:
        raise SystemUnavailable("no requested system could run: " + "; ".join(skipped.values()))

    names = [r.name for r in results]
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not among the evaluated systems {names}")
    baseline = baseline or ("bm25" if "bm25" in names else names[0])
    labels = {occ: kb.occupations[occ].label(lang) for occ in queries}
    write_report(
        results,
        out_dir,
        baseline=baseline,
        title=f"Course retrieval on {truth.name} ({split} split by {split_by}, {lang} queries)",
        ground_truth=truth.description,
        labels=labels,
    )
    bases = {base_system(s) for s in systems}
    info = RunInfo(
        ground_truth=truth,
        split=split,
        lang=lang,
        split_by=split_by,
        leaked_occupations=leaked,
        k=k,
        seed=SEED,
        queries=len(queries),
        split_occupations=counts["split_occupations"],
        without_relevant=counts["without_relevant"],
        not_in_kb=counts["not_in_kb"],
        max_queries=max_queries,
        systems=[r.name for r in results],
        skipped=skipped,
        dense_model=factory.dense_model if {"dense", "dense-views"} & bases else None,
        course_encoders=dict(settings.course_encoders) if {"routed", "hybrid"} & bases else None,
        reranker=factory.reranker,
        llm_ranker=factory.llm_ranker,
        retriever=factory.retriever,
        catalog_size=catalog_size,
        seconds=round(time.perf_counter() - started, 2),
        notes=[*NOTES, ROW_SPLIT_WARNING] if split_by == "row" else list(NOTES),
    )
    if have_skills:
        info.notes.append(f"each simulated user states {have_skills} essential skills (removed from the gap)")
    if replay_stats is not None:
        info.notes.append(f"agent replay: {replay_stats}")
    (out_dir / "run.json").write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
    _append_run_notes(out_dir / "report.md", info)
    return results


def _append_run_notes(report: Path, info: RunInfo) -> None:
    """The run's conventions and skipped systems at the end of report.md (details in run.json)."""
    warning: list[str] = []
    if info.split_by == "row":
        leaked = f"{info.leaked_occupations} test occupations also have rows in train"
        warning = [f"> **{ROW_SPLIT_WARNING}** ({leaked}).", ""]
    lines = [
        "## Run",
        "",
        *warning,
        f"Split `{info.split}` by {info.split_by} ({info.leaked_occupations} test occupations with rows in "
        f"train): {info.split_occupations} occupations, {info.without_relevant} without a "
        f"relevant course, {info.queries} scored"
        + (f" (sample of at most {info.max_queries})" if info.max_queries else "")
        + f"; retrievable catalog {info.catalog_size} courses; {info.seconds:.1f} s.",
        "",
        *(f"- {note}" for note in info.notes),
        *(f"- skipped `{name}`: {why}" for name, why in info.skipped.items()),
        "",
    ]
    with report.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


class TableRow(BaseModel):
    """One line of the console summary."""

    model_config = ConfigDict(extra="forbid")

    system: str
    cells: dict[str, str]


def summary_rows(results: list[SystemResult], baseline: str = "bm25") -> list[TableRow]:
    """Means with CIs, beyond-accuracy figures and the paired p-value of nDCG@k against the baseline."""
    if not results:
        return []
    k = results[0].k
    base = next((r for r in results if r.name == baseline), results[0])
    rows = []
    for r in results:
        cells: dict[str, str] = {}
        for metric in (f"ndcg@{k}", f"map@{k}", f"recall@{k}", f"precision@{k}", f"mrr@{k}"):
            ci = r.cis.get(metric)
            cells[metric] = "–" if ci is None or ci.n == 0 else f"{ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]"
        for metric in (f"judged@{k}", f"ndcg_cond@{k}", f"gap_coverage@{k}", f"ild@{k}"):
            value = r.means.get(metric)
            cells[metric] = "–" if value is None or np.isnan(value) else f"{value:.3f}"
        cells[f"catalog_cov@{k}"] = f"{r.beyond.get(f'catalog_coverage@{k}', float('nan')):.3f}"
        cells["ooc"] = f"{r.beyond.get('out_of_catalog_rate', float('nan')):.3f}"
        cells["p50 ms"] = f"{r.latency.p50_ms:.1f}" if r.latency else "–"
        if r.name == base.name:
            cells[f"p vs {base.name}"] = "–"
        else:
            test = paired_randomization_test(r.per_query[f"ndcg@{k}"], base.per_query[f"ndcg@{k}"])
            cells[f"p vs {base.name}"] = f"{test.mean_diff:+.3f} (p={test.p_value:.3g})"
        rows.append(TableRow(system=r.name, cells=cells))
    return rows
