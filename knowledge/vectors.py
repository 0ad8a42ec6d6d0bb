"""ChromaDB label indexes (occupations, skills): embedded ``PersistentClient`` by default, ``HttpClient``
when a Chroma server is configured. We always pass our own embeddings — Chroma's default embedding
function would try to download a model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import chromadb
import numpy as np
import pandas as pd
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings

from craft.settings import Settings
from knowledge.encoders import Encoder, VectorCache

UPSERT_BATCH = 4096


def chroma_client(settings: Settings) -> ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
        )
    path = settings.store_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def sample_uris(uris: list[str], n: int | None, seed: int = 42) -> set[str]:
    """A fixed sample that does not move when unrelated rows change: rank by a seeded hash of the URI."""
    if n is None or n >= len(uris):
        return set(uris)
    ranked = sorted(uris, key=lambda u: hashlib.sha1(f"{seed}:{u}".encode()).hexdigest())
    return set(ranked[:n])


@dataclass
class Hit:
    label_id: str
    uri: str
    lang: str
    label: str
    score: float


class LabelIndex:
    """One Chroma collection of label vectors (cosine HNSW) for one concept kind."""

    def __init__(self, client: ClientAPI, name: str, encoder: Encoder) -> None:
        self.name = name
        self.encoder = encoder
        metadata = {"hnsw:space": "cosine", "encoder": encoder.identity}
        self.collection = client.get_or_create_collection(
            name=name, metadata=metadata, embedding_function=None
        )
        built_by = (self.collection.metadata or {}).get("encoder")
        if built_by is not None and built_by != encoder.identity:
            # Same collection name, other weights (a model retrained under its old name): never mix the two.
            client.delete_collection(name)
            self.collection = client.create_collection(name=name, metadata=metadata, embedding_function=None)

    @property
    def count(self) -> int:
        return self.collection.count()

    def build(self, labels: pd.DataFrame, cache: VectorCache, *, progress: str | None = None) -> int:
        """Upsert the labels that are not in the collection yet; returns how many were added."""
        present: set[str] = set()
        if self.count:
            present = set(self.collection.get(include=[])["ids"])
        todo = labels[~labels.label_id.isin(present)]
        if todo.empty:
            return 0
        vectors = cache.encode(todo.label.tolist(), query=True, progress=progress)
        for start in range(0, len(todo), UPSERT_BATCH):
            part = todo.iloc[start : start + UPSERT_BATCH]
            self.collection.upsert(
                ids=part.label_id.tolist(),
                embeddings=vectors[start : start + UPSERT_BATCH],
                metadatas=[
                    {"uri": u, "lang": lang, "label_type": t}
                    for u, lang, t in zip(part.uri, part.lang, part.label_type, strict=True)
                ],
                documents=part.label.tolist(),
            )
        return len(todo)

    def search(self, vector: np.ndarray, k: int = 30, where: dict | None = None) -> list[Hit]:
        if not self.count:
            return []
        result = self.collection.query(
            query_embeddings=[vector.tolist()],
            n_results=min(k, self.count),
            where=where,
            include=["metadatas", "documents", "distances"],
        )
        return [
            Hit(label_id=i, uri=m["uri"], lang=m["lang"], label=d, score=1.0 - dist)
            for i, m, d, dist in zip(
                result["ids"][0],
                result["metadatas"][0],
                result["documents"][0],
                result["distances"][0],
                strict=True,
            )
        ]


def index_name(kind: str, encoder: Encoder, snapshot_version: str, sample: int | None, tag: str = "") -> str:
    """Collections are per snapshot, model and sample, so a rebuilt snapshot never reads stale vectors."""
    model = "".join(ch for ch in encoder.name.lower() if ch.isalnum())[:20]
    suffix = f"-s{sample}" if sample else ""
    return f"{kind}-{model}-{snapshot_version}{suffix}{tag}"[:63]
