"""Ranking metrics through ranx plus the beyond-accuracy figures the issue asks for.

Conventions, fixed here so every report means the same thing:

- A run is ``{occupation_uri: [(course_id, score), ...]}`` best first. The LIST ORDER is the ranking: scores
  are replaced by rank-derived ones before ranx sees them, so ties or unsorted scores cannot reorder it.
  A course listed twice keeps its first position; lists are cut at ``k``.
- Graded nDCG is ranx's ``ndcg`` (Järvelin-Kekäläinen linear gain, as trec_eval); its ideal DCG is computed
  from ALL judged relevant courses in the qrels, retrieved or not. Binary metrics count grade >= 1 as
  relevant.
- ``map@k`` is real average precision: the sum of precision at each relevant hit in the top k divided by the
  number of relevant courses in the qrels (not by k, not by the hits).
- Unjudged courses count as not relevant (TREC convention); ``judged@k`` reports how much of the top k was
  judged at all, so pool bias stays visible. ``ndcg_cond@k`` is nDCG on the *condensed* list (Sakai 2007:
  unjudged courses removed before cutting at k, over the run's whole list): a system that only loses because
  it surfaces courses the judges never saw does not lose there.
- Queries without any relevant course in the qrels are NOT scored (every metric is 0/0 there); they are
  listed in ``skipped_no_relevant``. Queries with relevant courses that the run lacks score 0 on every metric
  and are listed in ``missing_from_run``. Run queries absent from the qrels are ignored (``not_in_qrels``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from evaluation.qrels import Qrels

Ranking = Sequence[tuple[str, float]]
Run = Mapping[str, Ranking]

NDCG_CUTOFFS = (1, 3, 5, 10)


def metric_names(k: int = 10) -> list[str]:
    """Column order of the per-query table: nDCG at the standard cutoffs up to k, then the k metrics."""
    cutoffs = sorted({c for c in NDCG_CUTOFFS if c <= k} | {k})
    return [
        *(f"ndcg@{c}" for c in cutoffs),
        f"precision@{k}",
        f"recall@{k}",
        f"hit_rate@{k}",
        f"map@{k}",
        f"mrr@{k}",
    ]


def top_k(ranking: Ranking, k: int) -> list[str]:
    """The first k distinct course ids in list order."""
    return list(dict.fromkeys(course for course, _ in ranking))[:k]


class RunEvaluation(BaseModel):
    """Per-query metric table (index: occupation URI) and its means over the scored queries."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    k: int
    per_query: pd.DataFrame
    means: dict[str, float]
    skipped_no_relevant: list[str] = Field(description="Queries in the qrels without a relevant course.")
    missing_from_run: list[str] = Field(description="Scored queries the run has no entry for (scored 0).")
    not_in_qrels: list[str] = Field(description="Run queries without judgments (not scored).")


def evaluate_run(qrels: Qrels, run: Run, k: int = 10) -> RunEvaluation:
    """Score a run against graded qrels; see the module docstring for every convention."""
    metrics = metric_names(k)
    scored = [q for q in qrels.queries() if qrels.has_relevant(q)]
    skipped = [q for q in qrels.queries() if not qrels.has_relevant(q)]
    missing = [q for q in scored if not run.get(q)]
    extra = sorted(set(run) - set(qrels.judgments))
    columns = [*metrics, f"judged@{k}", f"ndcg_cond@{k}", "relevant", "retrieved"]
    if not scored:
        empty = pd.DataFrame(columns=columns, index=pd.Index([], name="occupation_uri"), dtype=float)
        return RunEvaluation(
            k=k,
            per_query=empty,
            means={name: float("nan") for name in [*metrics, f"judged@{k}", f"ndcg_cond@{k}"]},
            skipped_no_relevant=skipped,
            missing_from_run=missing,
            not_in_qrels=extra,
        )

    rankings = {q: top_k(run.get(q, []), k) for q in scored}
    condensed = {  # the whole list, unjudged courses removed, then cut at k
        q: [d for d in top_k(run.get(q, []), len(run.get(q, []))) if d in qrels.judgments.get(q, {})][:k]
        for q in scored
    }
    frame = _per_query(qrels, rankings, metrics)
    frame.index.name = "occupation_uri"
    frame[f"judged@{k}"] = [_judged_share(rankings[q], qrels.judgments.get(q, {})) for q in scored]
    frame[f"ndcg_cond@{k}"] = _per_query(qrels, condensed, [f"ndcg@{k}"])[f"ndcg@{k}"]
    frame["relevant"] = [len(qrels.relevant(q)) for q in scored]
    frame["retrieved"] = [len(rankings[q]) for q in scored]
    means = {name: float(frame[name].mean()) for name in [*metrics, f"judged@{k}", f"ndcg_cond@{k}"]}
    return RunEvaluation(
        k=k,
        per_query=frame,
        means=means,
        skipped_no_relevant=skipped,
        missing_from_run=missing,
        not_in_qrels=extra,
    )


def _per_query(qrels: Qrels, rankings: Mapping[str, list[str]], metrics: list[str]) -> pd.DataFrame:
    """ranx scores per query (rows in ``rankings`` order) of ranked lists, the list order being the ranking;
    a query with an empty list scores 0 (ranx cannot build a run without a single document)."""
    import ranx  # numba start-up is slow; only pay it when evaluating

    frame = pd.DataFrame(0.0, index=list(rankings), columns=metrics)
    ranked = {q: docs for q, docs in rankings.items() if docs}
    if not ranked:
        return frame
    ranx_qrels = ranx.Qrels({q: qrels.relevant(q) for q in ranked})
    ranx_run = ranx.Run(
        {q: {d: float(len(docs) - i) for i, d in enumerate(docs)} for q, docs in ranked.items()}
    )
    order = list(ranx_run.get_query_ids())
    if order != list(ranx_qrels.get_query_ids()):
        raise RuntimeError("ranx query order of run and qrels differ")
    # at least two metrics: with one, ranx's per-query output raises KeyError (it re-binds its key)
    names = metrics if len(metrics) > 1 else [*metrics, "hit_rate@1"]
    scores = ranx.evaluate(
        ranx_qrels, ranx_run, names, return_mean=False, save_results_in_run=False, threads=1
    )
    for name in metrics:
        frame.loc[order, name] = np.asarray(scores[name], dtype=float)
    return frame


# --- beyond accuracy --------------------------------------------------------------------------------


def _judged_share(docs: list[str], judged: Mapping[str, int]) -> float:
    return sum(doc in judged for doc in docs) / len(docs) if docs else float("nan")


def judged_share_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean over queries (with a non-empty top k) of the share of the top k that has any judgment, grade 0
    included: a low share means the metric mostly counts unjudged courses as misses (pool bias)."""
    shares = [_judged_share(top_k(ranking, k), qrels.judgments.get(q, {})) for q, ranking in run.items()]
    shares = [share for share in shares if not np.isnan(share)]
    return float(np.mean(shares)) if shares else float("nan")


def gap_coverage_at_k(
    run: Run,
    essential_skills_by_occ: Mapping[str, Iterable[str]],
    course_skills: Mapping[str, Iterable[str]],
    k: int = 10,
) -> dict[str, float]:
    """Per query: share of the occupation's essential skills taught by at least one top-k course.

    Queries whose occupation has no essential skills are left out (undefined); a course without known skills
    covers nothing.
    """
    coverage: dict[str, float] = {}
    for query, ranking in run.items():
        essential = set(essential_skills_by_occ.get(query, ()))
        if not essential:
            continue
        taught: set[str] = set()
        for course in top_k(ranking, k):
            taught.update(course_skills.get(course, ()))
        coverage[query] = len(essential & taught) / len(essential)
    return coverage


def intra_list_diversity(run: Run, vectors: Mapping[str, np.ndarray], k: int = 10) -> dict[str, float]:
    """Per query: mean pairwise cosine distance (1 - cos) among the top-k courses that have a vector.

    Lists with fewer than two vectors are left out (no pair, undefined); zero vectors are treated as
    orthogonal to everything.
    """
    diversity: dict[str, float] = {}
    for query, ranking in run.items():
        found = [np.asarray(vectors[c], dtype=float) for c in top_k(ranking, k) if c in vectors]
        if len(found) < 2:
            continue
        matrix = np.vstack(found)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        similarity = unit @ unit.T
        pairs = list(itertools.combinations(range(len(found)), 2))
        diversity[query] = float(np.mean([1.0 - similarity[i, j] for i, j in pairs]))
    return diversity


def catalog_coverage(runs: Run | Iterable[Run], catalog_size: int, k: int = 10) -> float:
    """Share of the catalog that appears in at least one top k (over all queries of one or more runs)."""
    if catalog_size <= 0:
        raise ValueError("catalog_size must be positive")
    all_runs = [runs] if isinstance(runs, Mapping) else list(runs)
    seen = {course for run in all_runs for ranking in run.values() for course in top_k(ranking, k)}
    return len(seen) / catalog_size


def out_of_catalog_rate(run: Run, catalog_ids: Iterable[str], k: int = 10) -> float:
    """Share of all top-k positions whose course id is not in the catalog: must be 0 (hallucinated ids)."""
    catalog = set(catalog_ids)
    returned = [course for ranking in run.values() for course in top_k(ranking, k)]
    return sum(course not in catalog for course in returned) / len(returned) if returned else 0.0


class Latency(BaseModel):
    """Per-query wall time of a system, in milliseconds."""

    model_config = ConfigDict(extra="forbid")

    queries: int
    p50_ms: float
    p95_ms: float
    mean_ms: float


def latency_summary(seconds: Sequence[float]) -> Latency:
    """p50/p95 with numpy's linear interpolation between order statistics."""
    if not seconds:
        raise ValueError("no latencies measured")
    ms = np.asarray(seconds, dtype=float) * 1000.0
    return Latency(
        queries=len(ms),
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        mean_ms=float(ms.mean()),
    )
