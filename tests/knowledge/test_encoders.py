"""Encoders: L2-normalized output, a vector cache that never embeds a text twice, E5 shares EN/DE space."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from craft.settings import Settings
from knowledge.encoders import E5Encoder, Encoder, SentenceTransformerEncoder, VectorCache, get_encoder
from knowledge.models import MANIFEST, ModelManifest, model_path

pytestmark = pytest.mark.usefixtures("hf_offline")


class CountingEncoder(Encoder):
    """Deterministic, deliberately unnormalized vectors; records every text it is asked to encode."""

    def __init__(self, name: str = "fake", dim: int = 4) -> None:
        self.name, self.dim = name, dim
        self.calls: list[tuple[list[str], bool]] = []

    def _encode(self, texts: list[str], *, query: bool) -> np.ndarray:
        self.calls.append((list(texts), query))
        rows = [[len(t) + 1.0, float(sum(map(ord, t)) % 7), 3.0 if query else -3.0, 0.5] for t in texts]
        return np.asarray(rows, dtype=np.float64)[:, : self.dim]

    @property
    def encoded(self) -> list[str]:
        return [t for texts, _ in self.calls for t in texts]


def test_encoder_normalizes_and_casts() -> None:
    encoder = CountingEncoder()
    vectors = encoder.encode(["a", "bb", "ccc"])
    assert vectors.shape == (3, 4)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    raw = encoder._encode(["bb"], query=True)[0]
    np.testing.assert_allclose(vectors[1], raw / np.linalg.norm(raw), rtol=1e-6)


def test_encoder_zero_vector_does_not_divide_by_zero() -> None:
    class Zero(CountingEncoder):
        def _encode(self, texts: list[str], *, query: bool) -> np.ndarray:
            return np.zeros((len(texts), self.dim))

    vectors = Zero().encode(["x"])
    assert np.isfinite(vectors).all() and not vectors.any()


def test_encoder_empty_list() -> None:
    encoder = CountingEncoder(dim=4)
    vectors = encoder.encode([])
    assert vectors.shape == (0, 4) and vectors.dtype == np.float32
    assert encoder.calls == []


def test_vector_cache_encodes_each_text_once(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    cache = VectorCache(tmp_path / "sub" / "vectors.sqlite", encoder)
    texts = ["nurse", "baker", "nurse", "C++"]
    first = cache.encode(texts)
    assert first.shape == (4, 4) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(first[0], first[2])
    assert sorted(encoder.encoded) == ["C++", "baker", "nurse"]  # the duplicate is encoded once
    second = cache.encode(texts)
    assert len(encoder.calls) == 1  # everything came from the cache
    np.testing.assert_array_equal(first, second)
    # only the new text is encoded; order of the result follows the request
    third = cache.encode(["welder", "baker"])
    assert encoder.calls[-1] == (["welder"], True)
    np.testing.assert_array_equal(third[1], first[1])


def test_vector_cache_keys_query_and_passage_apart(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    cache = VectorCache(tmp_path / "v.sqlite", encoder)
    query = cache.encode(["nurse"], query=True)
    passage = cache.encode(["nurse"], query=False)
    assert encoder.calls == [(["nurse"], True), (["nurse"], False)]
    assert not np.allclose(query, passage)
    cache.encode(["nurse"], query=False)
    assert len(encoder.calls) == 2


def test_vector_cache_persists_and_is_per_model(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    VectorCache(path, CountingEncoder()).encode(["nurse", "baker"])
    again = CountingEncoder()
    VectorCache(path, again).encode(["baker", "nurse"])
    assert again.calls == []  # a new process (new cache object) reuses the stored vectors
    other = CountingEncoder(name="other-model")
    VectorCache(path, other).encode(["nurse"])
    assert other.encoded == ["nurse"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM vec").fetchone()[0] == 3


def test_vector_cache_batches(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    cache = VectorCache(tmp_path / "v.sqlite", encoder)
    texts = [f"text {i}" for i in range(1000)]
    vectors = cache.encode(texts, batch_size=300)
    assert vectors.shape == (1000, 4)
    assert [len(batch) for batch, _ in encoder.calls] == [300, 300, 300, 100]
    np.testing.assert_array_equal(cache.encode(texts[::-1]), vectors[::-1])  # > 900 keys read in chunks
    assert len(encoder.calls) == 4


def test_vector_cache_empty_list(tmp_path: Path) -> None:
    encoder = CountingEncoder(dim=4)
    vectors = VectorCache(tmp_path / "v.sqlite", encoder).encode([])
    assert vectors.shape == (0, 4) and vectors.dtype == np.float32
    assert encoder.calls == []


def test_get_encoder_rejects_non_encoder_formats(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    folder = model_path(settings, "tiny-llm")
    folder.mkdir(parents=True)
    manifest = ModelManifest(
        name="tiny-llm", role="llm", format="hf-causal-lm", base_model="x", source="test", created="2026"
    )
    (folder / MANIFEST).write_text(manifest.model_dump_json())
    with pytest.raises(ValueError, match="has format 'hf-causal-lm', not an encoder"):
        get_encoder("tiny-llm", settings)


def test_e5_encoder_cross_lingual(prepared_models: Settings) -> None:
    encoder = get_encoder("multilingual-e5-small", prepared_models)
    assert isinstance(encoder, E5Encoder)
    assert get_encoder("multilingual-e5-small", prepared_models) is encoder  # loaded once
    assert (encoder.name, encoder.dim) == ("multilingual-e5-small", 384)
    vectors = encoder.encode(["nurse", "Krankenpfleger", "baker"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    nurse, pfleger, baker = vectors
    assert float(nurse @ pfleger) > float(nurse @ baker)


def test_e5_through_vector_cache(prepared_models: Settings, tmp_path: Path) -> None:
    encoder = get_encoder("multilingual-e5-small", prepared_models)
    cache = VectorCache(tmp_path / "v.sqlite", encoder)
    passages = cache.encode(["Bäcker", "Krankenpfleger"], query=False)
    query = cache.encode(["nurse"], query=True)[0]
    assert float(query @ passages[1]) > float(query @ passages[0])
    np.testing.assert_array_equal(cache.encode(["Krankenpfleger"], query=False)[0], passages[1])


@pytest.mark.slow
def test_minilm_encoder(prepared_models: Settings) -> None:
    encoder = get_encoder("all-MiniLM-L6-v2", prepared_models)
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert encoder.dim == 384
    nurse, registered_nurse, baker = encoder.encode(["nurse", "registered nurse", "baker"])
    assert float(nurse @ registered_nurse) > float(nurse @ baker)
