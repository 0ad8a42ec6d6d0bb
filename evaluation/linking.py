"""Occupation and skill linking benchmark on held-out labels.

Protocol: per query set, a seeded sample of concepts each gives up one label (an ESCO alternative label, or a
BA title that maps to exactly one occupation). Every label row of that concept with the same normalized form
(any language, any type, including German gender forms derived from it) is removed from the lexical tables and
from a dedicated dense index, so the query can only be answered by generalization, never by lookup.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table
from tqdm.auto import tqdm

from craft.settings import Settings
from evaluation.stats import paired_randomization_test
from knowledge.encoders import get_encoder
from knowledge.indexes import indexed_labels, vector_cache
from knowledge.store import get_knowledge
from knowledge.text import gender_forms, normalize
from knowledge.vectors import LabelIndex, chroma_client, index_name
from tools.linking import Linker

SEED = 42


class QuerySetResult(BaseModel):
    name: str
    queries: int
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float
    latency_ms_p50: float
    latency_ms_p95: float
    examples_missed: list[tuple[str, str, str]]
    ranks: list[int | None] = Field(
        default_factory=list,
        description="Rank of the right concept per query (None: not in the top 10), in the seeded query "
        "order every encoder sees, so two reports pair up query by query (compare_reports).",
    )


class SetComparison(BaseModel):
    """One query set, another encoder against a baseline: paired by query (same seeded held-out labels)."""

    name: str
    queries: int
    recall_at_1: tuple[float, float] = Field(description="(baseline, other)")
    mrr_at_10: tuple[float, float] = Field(description="(baseline, other)")
    p_recall_at_1: float = Field(description="Paired randomization test on hit@1, two-sided.")
    p_mrr_at_10: float = Field(description="Paired randomization test on reciprocal rank, two-sided.")


class LinkingReport(BaseModel):
    snapshot: str
    encoder: str
    index_sample: int | None
    results: list[QuerySetResult]
    encoder_strings_per_s: float
    knowledge_build_s: float
    rss_mb: float


def _holdout(labels: pd.DataFrame, kind: str, lang: str, label_type: str, n: int, seed: int) -> pd.DataFrame:
    """One label per sampled concept that has another label left to be found by."""
    pool = labels[(labels.kind == kind) & (labels.lang == lang) & (labels.label_type == label_type)]
    per_uri = labels[labels.kind == kind].groupby("uri").size()
    pool = pool[pool.uri.map(per_uri) > 1]
    rng = random.Random(seed)
    uris = sorted(pool.uri.unique())
    rng.shuffle(uris)
    positions = pool.groupby("uri", sort=False).indices  # rows of each concept, in table order
    chosen = []
    for uri in uris[:n]:
        rows = positions[uri]
        chosen.append(pool.iloc[rows[rng.randrange(len(rows))]])
    return pd.DataFrame(chosen)


def query_sets(labels: pd.DataFrame, n_queries: int) -> dict[str, pd.DataFrame]:
    """The benchmark's held-out labels per query set; a smaller ``n_queries`` gives a prefix of each set's
    concepts, so excluding the sets of the default size excludes every smaller run too (the linker trainer
    keeps them out of its training data)."""
    return {
        "occupations EN (alt labels)": _holdout(labels, "occupation", "en", "alt", n_queries, SEED),
        "occupations DE (alt labels)": _holdout(labels, "occupation", "de", "alt", n_queries, SEED + 1),
        "occupations DE (BA titles, unique)": _holdout(
            labels, "occupation", "de", "ba_title", n_queries, SEED + 2
        ),
        "skills EN (alt labels)": _holdout(labels, "skill", "en", "alt", n_queries, SEED + 3),
    }


def removal_keys(queries: pd.DataFrame) -> set[tuple[str, str]]:
    """``(uri, norm)`` of each held-out label and of the gender forms derived from it."""
    keys: set[tuple[str, str]] = set()
    for uri, label in zip(queries.uri, queries.label, strict=True):
        keys.add((uri, normalize(label)))
        keys.update((uri, normalize(form)) for form in gender_forms(label))
    return keys


def _without(labels: pd.DataFrame, keys: set[tuple[str, str]]) -> pd.DataFrame:
    mask = [(u, n) not in keys for u, n in zip(labels.uri, labels.norm, strict=True)]
    return labels[mask]


def _evaluate(name: str, linker: Linker, queries: pd.DataFrame) -> QuerySetResult:
    ranks, latencies, missed = [], [], []
    linker.link("warm up")
    for uri, label in tqdm(list(zip(queries.uri, queries.label, strict=True)), desc=name, unit="q"):
        started = time.perf_counter()
        matches = linker.link(label, k=10)
        latencies.append((time.perf_counter() - started) * 1000)
        found = [m.uri for m in matches]
        rank = found.index(uri) + 1 if uri in found else None
        ranks.append(rank)
        if rank != 1 and len(missed) < 15:
            missed.append((label, uri, matches[0].matched_label if matches else "—"))
    n = len(ranks)
    return QuerySetResult(
        name=name,
        queries=n,
        recall_at_1=round(sum(r == 1 for r in ranks) / n, 4),
        recall_at_5=round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
        mrr_at_10=round(sum(1 / r for r in ranks if r) / n, 4),
        latency_ms_p50=round(statistics.median(latencies), 2),
        latency_ms_p95=round(float(np.percentile(latencies, 95)), 2),
        examples_missed=missed,
        ranks=ranks,
    )


def compare_reports(baseline: LinkingReport, other: LinkingReport) -> list[SetComparison]:
    """Per query set, the other encoder against the baseline with paired p-values (sets both report)."""
    out = []
    by_name = {r.name: r for r in baseline.results}
    for result in other.results:
        base = by_name.get(result.name)
        if base is None:
            continue
        if len(base.ranks) != result.queries or len(result.ranks) != base.queries:
            raise ValueError(
                f"{result.name!r}: both reports need per-query ranks over the same queries "
                f"({len(base.ranks)} vs {len(result.ranks)}); re-run the older benchmark"
            )
        hit_a = [float(r == 1) for r in base.ranks]
        hit_b = [float(r == 1) for r in result.ranks]
        rr_a = [1 / r if r else 0.0 for r in base.ranks]
        rr_b = [1 / r if r else 0.0 for r in result.ranks]
        out.append(
            SetComparison(
                name=result.name,
                queries=result.queries,
                recall_at_1=(base.recall_at_1, result.recall_at_1),
                mrr_at_10=(base.mrr_at_10, result.mrr_at_10),
                p_recall_at_1=paired_randomization_test(hit_b, hit_a).p_value,
                p_mrr_at_10=paired_randomization_test(rr_b, rr_a).p_value,
            )
        )
    return out


def print_comparison(baseline: LinkingReport, other: LinkingReport, console: Console) -> list[SetComparison]:
    rows = compare_reports(baseline, other)
    table = Table(title=f"{other.encoder} against {baseline.encoder} (paired by query)")
    for column in ("query set", "n", "R@1", "p", "MRR@10", "p"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name,
            str(row.queries),
            f"{row.recall_at_1[0]:.3f} → {row.recall_at_1[1]:.3f}",
            f"{row.p_recall_at_1:.3g}",
            f"{row.mrr_at_10[0]:.3f} → {row.mrr_at_10[1]:.3f}",
            f"{row.p_mrr_at_10:.3g}",
        )
    console.print(table)
    return rows


def run_benchmark(
    settings: Settings, out_dir: Path, *, n_queries: int = 1000, console: Console
) -> LinkingReport:
    kb = get_knowledge(settings)
    labels = kb.labels
    encoder = get_encoder(settings.linker_model, settings)
    cache = vector_cache(settings, encoder)
    sets = query_sets(labels, n_queries)
    keys = set().union(*(removal_keys(q) for q in sets.values()))
    reduced = _without(labels, keys)
    client = chroma_client(settings)
    linkers = {}
    for kind in ("occupation", "skill"):
        subset = reduced[reduced.kind == kind]
        dense_rows = indexed_labels(subset, kind, settings.index_sample, settings.skill_index_label_types)
        tag = f"-bench{len(keys)}"
        index = LabelIndex(
            client, index_name(kind, encoder, kb.manifest.version, settings.index_sample, tag), encoder
        )
        index.build(dense_rows, cache, progress=f"bench {kind} index")
        hints = kb.title_hints if kind == "occupation" else None
        linkers[kind] = Linker(subset, index=index, encoder=encoder, hints=hints)
    results = [
        _evaluate(name, linkers["skill" if name.startswith("skills") else "occupation"], queries)
        for name, queries in sets.items()
    ]
    texts = labels.label.sample(512, random_state=SEED).tolist()
    started = time.perf_counter()
    encoder.encode(texts)
    throughput = len(texts) / (time.perf_counter() - started)
    report = LinkingReport(
        snapshot=kb.manifest.version,
        encoder=encoder.name,
        index_sample=settings.index_sample,
        results=results,
        encoder_strings_per_s=round(throughput, 1),
        knowledge_build_s=kb.manifest.build_seconds,
        rss_mb=round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1),
    )
    _write(report, out_dir, console)
    return report


def _write(report: LinkingReport, out_dir: Path, console: Console) -> None:
    (out_dir / "bench").mkdir(parents=True, exist_ok=True)
    (out_dir / "bench" / "linking.json").write_text(report.model_dump_json(indent=2))
    table = Table(title=f"linking on held-out labels (snapshot {report.snapshot}, {report.encoder})")
    for column in ("query set", "n", "R@1", "R@5", "MRR@10", "p50 ms", "p95 ms"):
        table.add_column(column)
    for r in report.results:
        table.add_row(
            r.name,
            str(r.queries),
            f"{r.recall_at_1:.3f}",
            f"{r.recall_at_5:.3f}",
            f"{r.mrr_at_10:.3f}",
            f"{r.latency_ms_p50:.1f}",
            f"{r.latency_ms_p95:.1f}",
        )
    Console().print(table)
    console.print(
        f"encoder {report.encoder_strings_per_s} strings/s · knowledge build {report.knowledge_build_s}s · "
        f"RSS {report.rss_mb} MB · written to {out_dir / 'bench' / 'linking.json'}"
    )
    print(json.dumps({r.name: [r.recall_at_1, r.recall_at_5, r.mrr_at_10] for r in report.results}))
