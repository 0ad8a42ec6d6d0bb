"""Retrieval-stage benchmark: index build throughput against the raw encoder, warm latency on the full
catalog, and the recall of Chroma's HNSW index against the exact NumPy search.

Protocol (also in ``docs/benchmarks.md``):

- throughput: a seeded sample of described course texts; *raw* = ``encoder.encode`` in the cache's batches
  of 256, *index* = a ``DenseRetriever`` built from scratch over the same courses (empty vector cache, empty
  Chroma collection: embed, cache, upsert). Both after a warm-up call; ratio = index / raw.
- latency: the product retriever (``course_retriever``: language-routed two-view dense on Chroma, full
  catalog, default filters) per query, wall time after one untimed warm-up query per language; EN queries
  are served by the English encoder, DE queries by the multilingual one.
- ANN recall@k: per encoder, the top-k of the Chroma collection vs the exact top-k over the same vectors and
  filters, mean over the sampled occupations' queries (EN for the English encoder, DE for ``*``).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table
from tqdm.auto import tqdm

from craft.settings import Settings
from knowledge.encoders import VectorCache, get_encoder
from knowledge.store import get_knowledge
from knowledge.vectors import chroma_client
from tools.retrieval.base import RetrievalQuery
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.dense import DenseRetriever
from tools.retrieval.query import build_query
from tools.retrieval.registry import ANY_LANGUAGE, collection_name, course_retriever, dense_retriever

SEED = 42
BATCH = 256  # VectorCache.encode's batch size


class Throughput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    encoder: str
    courses: int
    raw_per_s: float
    index_per_s: float
    ratio: float


class Latency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str
    lang: str
    encoder: str
    queries: int
    catalog: int
    p50_ms: float
    p95_ms: float


class AnnRecall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    encoder: str
    lang: str
    queries: int
    k: int
    indexed: int
    recall_mean: float
    recall_min: float


class RetrievalBench(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snapshot: str
    cpus: int
    throughput: list[Throughput]
    latency: list[Latency]
    ann: list[AnnRecall]
    seconds: float


def measure_throughput(settings: Settings, corpus: CourseCorpus, model: str, n: int) -> Throughput:
    """Raw encoder vs a from-scratch index build over the same ``n`` described courses."""
    encoder = get_encoder(model, settings)
    described = [i for i, d in enumerate(corpus.courses.has_description) if d]
    rows = sorted(random.Random(SEED).sample(described, min(n, len(described))))
    sample = CourseCorpus(corpus.courses.iloc[rows].reset_index(drop=True))
    texts = sample.texts
    encoder.encode(texts[:BATCH], query=False)  # warm-up: lazy weights, allocator
    tick = time.perf_counter()
    for start in range(0, len(texts), BATCH):  # the same batches the vector cache sends
        encoder.encode(texts[start : start + BATCH], query=False)
    raw = len(texts) / (time.perf_counter() - tick)
    with tempfile.TemporaryDirectory(prefix="craft-bench-") as tmp:
        cache = VectorCache(Path(tmp) / "vectors.sqlite", encoder)
        client = chroma_client(settings.model_copy(update={"store_dir": Path(tmp), "chroma_host": None}))
        tick = time.perf_counter()
        DenseRetriever(sample, encoder, cache, client=client, collection="bench-courses")
        index = len(texts) / (time.perf_counter() - tick)
    return Throughput(
        encoder=model,
        courses=len(texts),
        raw_per_s=round(raw, 2),
        index_per_s=round(index, 2),
        ratio=round(index / raw, 3),
    )


def _queries(kb_occupations: list[str], n: int) -> list[str]:
    return sorted(random.Random(SEED).sample(kb_occupations, min(n, len(kb_occupations))))


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_retrieval_bench(
    settings: Settings,
    out_dir: Path,
    *,
    sample: int = 512,
    n_queries: int = 100,
    k: int = 10,
    console: Console,
) -> RetrievalBench:
    started = time.perf_counter()
    kb = get_knowledge(settings)
    corpus = CourseCorpus.from_knowledge(kb)
    encoders = dict(settings.course_encoders)
    throughput = []
    for model in dict.fromkeys(encoders.values()):
        console.print(f"throughput: {model} on {sample} courses (raw, then a from-scratch index)…")
        throughput.append(measure_throughput(settings, corpus, model, sample))

    occupations = _queries(sorted(u for u in kb.occupations if kb.occupation_skills.get(u)), n_queries)
    client = chroma_client(settings)
    product = course_retriever(settings, corpus, client=client, progress=True)
    latency = []
    for lang in ("en", "de"):
        queries = [build_query(kb, occ, lang=lang) for occ in occupations]
        product.retrieve(queries[0], k)  # warm-up; builds or syncs the routed index once
        seconds = []
        for query in tqdm(queries, desc=f"latency {lang}", unit="query"):
            tick = time.perf_counter()
            product.retrieve(query, k)
            seconds.append(time.perf_counter() - tick)
        key = "en" if lang == "en" and "en" in encoders else ANY_LANGUAGE
        latency.append(
            Latency(
                system="routed dense (two views, Chroma HNSW)",
                lang=lang,
                encoder=encoders[key],
                queries=len(queries),
                catalog=len(corpus.ids),
                p50_ms=round(statistics.median(seconds) * 1000, 1),
                p95_ms=round(_percentile(seconds, 95) * 1000, 1),
            )
        )

    ann = []
    for key, model in encoders.items():
        lang = "en" if key == "en" else "de"
        collection = collection_name(key, get_encoder(model, settings).name)  # the product's index
        approx = dense_retriever(settings, corpus, model, client=client, collection=collection)
        queries = [build_query(kb, occ, lang=lang) for occ in occupations]
        recalls = [_recall(approx, q, k) for q in tqdm(queries, desc=f"ANN recall {model}", unit="query")]
        ann.append(
            AnnRecall(
                encoder=model,
                lang=lang,
                queries=len(recalls),
                k=k,
                indexed=len(approx.rows),
                recall_mean=round(float(np.mean(recalls)), 4),
                recall_min=round(float(np.min(recalls)), 4),
            )
        )
    report = RetrievalBench(
        snapshot=kb.manifest.version,
        cpus=os.cpu_count() or 0,
        throughput=throughput,
        latency=latency,
        ann=ann,
        seconds=round(time.perf_counter() - started, 1),
    )
    bench_dir = out_dir / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    (bench_dir / "retrieval.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    _print(report, console)
    return report


def _recall(retriever: DenseRetriever, query: RetrievalQuery, k: int) -> float:
    """|ANN top-k ∩ exact top-k| / |exact top-k| under the query's filters."""
    mask = retriever.corpus.mask(query.filters)
    vector = retriever.query_vector(query)
    exact_scores = np.where(mask, retriever.scores_exact(vector), -np.inf)
    exact = {int(i) for i in np.argsort(-exact_scores)[:k] if np.isfinite(exact_scores[i])}
    if not exact:
        return 1.0
    approx_scores = np.where(mask, retriever.scores_ann(vector, mask, k), -np.inf)
    approx = {int(i) for i in np.argsort(-approx_scores)[:k] if np.isfinite(approx_scores[i])}
    return len(exact & approx) / len(exact)


def _print(report: RetrievalBench, console: Console) -> None:
    table = Table(title="index build throughput (courses/s)")
    for column in ("encoder", "courses", "raw", "index", "ratio"):
        table.add_column(column)
    for t in report.throughput:
        table.add_row(
            t.encoder, str(t.courses), f"{t.raw_per_s:.1f}", f"{t.index_per_s:.1f}", f"{t.ratio:.2f}"
        )
    console.print(table)
    table = Table(title="retrieval latency, warm, full catalog")
    for column in ("system", "lang", "encoder", "queries", "p50 ms", "p95 ms"):
        table.add_column(column)
    for lat in report.latency:
        table.add_row(
            lat.system, lat.lang, lat.encoder, str(lat.queries), f"{lat.p50_ms:.0f}", f"{lat.p95_ms:.0f}"
        )
    console.print(table)
    table = Table(title="ANN recall@k vs exact")
    for column in ("encoder", "lang", "queries", "k", "mean", "min"):
        table.add_column(column)
    for a in report.ann:
        table.add_row(
            a.encoder, a.lang, str(a.queries), str(a.k), f"{a.recall_mean:.4f}", f"{a.recall_min:.3f}"
        )
    console.print(table)
