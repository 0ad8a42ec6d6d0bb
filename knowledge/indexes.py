"""Builds the label indexes of the current snapshot (incremental: only missing labels are embedded)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from craft.settings import Settings
from knowledge.encoders import Encoder, VectorCache, get_encoder
from knowledge.store import KnowledgeBase, get_knowledge
from knowledge.vectors import LabelIndex, chroma_client, index_name, sample_uris

KINDS = ("occupation", "skill")


def indexed_labels(
    labels: pd.DataFrame, kind: str, sample: int | None, skill_types: list[str] | None = None
) -> pd.DataFrame:
    """The labels of ``kind`` that go into the dense index (all, or those of a fixed concept sample)."""
    subset = labels[labels.kind == kind]
    if kind == "skill" and skill_types is not None:
        subset = subset[subset.label_type.isin(skill_types)]
    if sample is None:
        return subset
    # Skills outnumber occupations ~4.6:1; keep that ratio so both indexes stay representative.
    n = sample if kind == "occupation" else sample * 4
    keep = sample_uris(sorted(subset.uri.unique()), n)
    return subset[subset.uri.isin(keep)]


def vector_cache(settings: Settings, encoder: Encoder) -> VectorCache:
    return VectorCache(settings.store_dir / "vectors" / f"{encoder.name}.sqlite", encoder)


def open_index(
    settings: Settings, kb: KnowledgeBase, kind: str, encoder: Encoder, tag: str = ""
) -> LabelIndex:
    name = index_name(kind, encoder, kb.manifest.version, settings.index_sample, tag)
    return LabelIndex(chroma_client(settings), name, encoder)


def build_indexes(settings: Settings, *, console: Console | None = None) -> dict[str, int]:
    """Embed and upsert what is missing; returns the collection sizes."""
    console = console or Console(stderr=True)
    kb = get_knowledge(settings)
    encoder = get_encoder(settings.linker_model, settings)
    cache = vector_cache(settings, encoder)
    sizes = {}
    for kind in KINDS:
        index = open_index(settings, kb, kind, encoder)
        labels = indexed_labels(kb.labels, kind, settings.index_sample, settings.skill_index_label_types)
        added = index.build(labels, cache, progress=f"{kind} labels")
        sizes[kind] = index.count
        state = "up to date" if not added else f"+{added:,} labels"
        console.print(f"[green]✓[/green] {kind} index {index.name}: {index.count:,} labels ({state})")
    return sizes


def indexes_ready(settings: Settings) -> bool:
    """True when every label index of the current snapshot is complete (used to skip work in `make run`)."""
    kb = get_knowledge(settings)
    encoder = get_encoder(settings.linker_model, settings)
    for kind in KINDS:
        labels = indexed_labels(kb.labels, kind, settings.index_sample, settings.skill_index_label_types)
        expected = len(labels)
        if open_index(settings, kb, kind, encoder).count < expected:
            return False
    return True
