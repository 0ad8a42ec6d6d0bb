"""The linker stage end to end on the tiny profile: a fine-tuned e5 that the registry serves in place of
``multilingual-e5-small``, whose held-out labels never reach training, and that the lookup links with
(its own label indexes, its own dense floor, never another model's vectors)."""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import chromadb
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from craft.settings import Settings, get_settings
from evaluation.linking import query_sets, removal_keys
from knowledge.encoders import Encoder, VectorCache, get_encoder
from knowledge.indexes import build_indexes
from knowledge.models import ModelManifest, resolve
from knowledge.store import get_knowledge
from knowledge.text import normalize
from knowledge.vectors import LabelIndex, index_name
from tools.linking import LinkWeights
from training import ConfigError, get_stage
from training.base import TrainingData
from training.linker import HOLDOUT_TYPES, LinkerConfig, LinkerStage, _upcast, build_linker_data

pytestmark = [pytest.mark.data, pytest.mark.slow]

SAMPLE = 4  # concepts in the lookup test's label indexes: a few hundred strings to embed


def _quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture(scope="module")
def tiny(
    isolate: Callable[[Path], Settings],
    link_base: Callable[[Settings, str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, ModelManifest, float]:
    settings = isolate(tmp_path_factory.mktemp("linker"))
    link_base(settings, "multilingual-e5-small-torch")
    started = time.perf_counter()
    manifest = get_stage("linker").run(settings, "tiny", console=_quiet())
    return settings, manifest, time.perf_counter() - started


def test_tiny_profile_trains_the_model_that_serves_the_linker_name(
    tiny: tuple[Settings, ModelManifest, float],
) -> None:
    settings, manifest, seconds = tiny
    assert seconds < 240
    folder, found = resolve(settings, settings.linker_model)
    assert settings.linker_model == "multilingual-e5-small"
    assert found == manifest and folder == settings.model_dir / manifest.name
    assert manifest.name.startswith("linker-") and len(manifest.name) == len("linker-") + 12
    assert (manifest.role, manifest.format, manifest.base_model) == (
        "encoder",
        "sentence-transformers",
        "multilingual-e5-small-torch",
    )
    config = manifest.config
    assert config["finetune_of"] == "multilingual-e5-small" and config["stage"] == "linker"
    assert config["profile"] == "tiny" and config["train"]["max_seq_length"] == 16
    assert config["query_prefix"] == "query: " and config["max_seq_length"] == 256
    assert config["data"]["pairs"] == 16 and manifest.data_hash
    assert not (settings.cache_dir / "train" / manifest.name).exists()

    metrics = manifest.metrics
    sets = config["data"]["validation_queries"]
    assert {"occupation_en_alt", "occupation_de_alt", "skill_en_alt"} <= set(sets)
    for name in sets:
        for metric in ("acc@1", "recall@5", "mrr@10"):
            for suffix in ("", "_base"):
                assert 0.0 <= metrics[f"val_{name}_{metric}{suffix}"] <= 1.0
    for suffix in ("", "_base"):
        assert (
            metrics[f"val_acc@1{suffix}"]
            <= metrics[f"val_mrr@10{suffix}"]
            <= metrics[f"val_recall@5{suffix}"]
        )
    assert metrics["train_steps"] == metrics["max_steps"] == 2 and not metrics["stopped_by_time_budget"]

    mapping = config["cosine_map"]
    assert len(mapping["base"]) == len(mapping["tuned"]) == len(mapping["levels"])
    assert np.all(np.diff(mapping["base"]) > 0) and np.all(np.diff(mapping["tuned"]) >= 0)
    assert 0.0 < metrics["dense_floor"] < 1.0


def test_held_out_labels_never_train(enriched_settings: Settings) -> None:
    kb = get_knowledge(enriched_settings)
    config = LinkerConfig.for_profile(
        "tiny",
        {"max_concepts": 300, "anchors_per_concept": None, "max_pairs": 2000, "validation_queries": 50},
    )
    data = build_linker_data(kb, config)
    anchors = {normalize(p.anchor) for p in data.pairs}
    assert len(data.pairs) == 2000 and anchors
    # no anchor is (a form of) a held-out label of any concept; no positive is its own concept's held-out form
    assert not anchors & data.held_out_norms
    assert not {(p.uri, normalize(p.positive)) for p in data.pairs} & data.held_out
    english = kb.labels[(kb.labels.lang == "en") & (kb.labels.label_type == "pref")]
    assert {(p.uri, p.positive) for p in data.pairs} <= set(zip(english.uri, english.label, strict=True))

    # every validation query is held out, its form never an anchor and never in the validation index
    assert set(data.validation) == {
        f"{kind}_{lang}_{label_type}" for (kind, lang), types in HOLDOUT_TYPES.items() for label_type in types
    }
    indexed = {(u, normalize(label)) for rows in data.index.values() for u, label in rows}
    for rows in data.validation.values():
        keys = {(u, normalize(label)) for u, label in rows}
        assert keys <= data.held_out and not keys & indexed
        assert not {n for _, n in keys} & anchors

    # the downstream benchmark's queries (any --queries up to the default) are held out as well
    bench = set().union(*(removal_keys(q) for q in query_sets(kb.labels, 1000).values()))
    assert bench and bench == data.bench_keys and bench <= data.held_out
    assert not {n for _, n in bench} & anchors

    # a remote fit gets the pairs and validation sets, picklable, without the held-out keys
    remote = LinkerStage()._remote_payload(TrainingData(hash="h", payload=data))
    assert remote.pairs == data.pairs and remote.validation == data.validation and not remote.held_out
    assert pickle.loads(pickle.dumps(remote)) == remote

    # the split is a property of the label, not of the sample: another concept sample holds out the same
    other = build_linker_data(kb, LinkerConfig.for_profile("tiny"))
    assert other.held_out == data.held_out
    assert build_linker_data(kb, config).pairs == data.pairs  # seeded


def test_a_remote_float16_model_is_stored_as_float32(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    save_file(
        {"w": torch.ones(2, dtype=torch.float16), "ids": torch.arange(2)}, str(tmp_path / "m.safetensors")
    )
    _upcast(tmp_path)
    tensors = load_file(str(tmp_path / "m.safetensors"))
    assert tensors["w"].dtype == torch.float32 and tensors["ids"].dtype == torch.int64


def test_config_keeps_the_base_apart_from_what_it_replaces() -> None:
    with pytest.raises(ConfigError, match="replaces == base_model"):
        LinkerConfig.for_profile("tiny", {"replaces": "multilingual-e5-small-torch"})
    assert LinkerConfig.for_profile("full").bf16 and LinkerConfig.for_profile("cpu").max_pairs == 12800


@pytest.fixture
def served(
    tiny: tuple[Settings, ModelManifest, float], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, ModelManifest]]:
    """The process settings pointed at the tiny run's registry, label indexes embedded with its model."""
    import tools.lookup

    trained, manifest, _ = tiny
    monkeypatch.setenv("CRAFT_MODEL_DIR", str(trained.model_dir))
    monkeypatch.setenv("CRAFT_INDEX_SAMPLE", str(SAMPLE))
    get_settings.cache_clear()
    tools.lookup._lookup.cache_clear()
    settings = get_settings()
    build_indexes(settings, console=_quiet())
    try:
        yield settings, manifest
    finally:
        encoder = get_encoder(settings.linker_model, settings)
        client = chromadb.PersistentClient(path=str(settings.store_dir / "chroma"))
        version = get_knowledge(settings).manifest.version
        for kind in ("occupation", "skill"):
            client.delete_collection(index_name(kind, encoder, version, SAMPLE))
        (settings.store_dir / "vectors" / f"{encoder.name}.sqlite").unlink(missing_ok=True)
        get_settings.cache_clear()
        tools.lookup._lookup.cache_clear()


def test_the_lookup_links_with_the_fine_tuned_model(served: tuple[Settings, ModelManifest]) -> None:
    from tools.lookup import find_occupations, find_skills, get_lookup

    settings, manifest = served
    lookup = get_lookup()
    encoder = lookup.occupations.encoder
    assert encoder is not None and encoder.name == manifest.name and encoder.version == manifest.created
    for linker in (lookup.occupations, lookup.skills):
        assert linker.index is not None and linker.index.count > 0
        assert linker.index.name.split("-")[1] == manifest.name.replace("-", "")
        assert linker.weights.dense_floor == pytest.approx(manifest.metrics["dense_floor"], abs=1e-3)

    kb = get_knowledge(settings)
    uri, label = _unambiguous(lookup.occupations.index, kb.labels)
    hits = lookup.occupations.index.search(encoder.encode([label])[0], k=3)
    assert hits[0].uri == uri and hits[0].score == pytest.approx(1.0, abs=1e-4)  # same model both sides
    found = find_occupations(label, lang="en", k=3)
    assert found and found[0].uri == uri and found[0].match == "exact"

    skill_uri, skill = _unambiguous(lookup.skills.index, kb.labels, whole=True)
    mentions = find_skills(skill, lang="en")
    assert mentions and mentions[0].uri == skill_uri


def _unambiguous(index: LabelIndex, labels: pd.DataFrame, *, whole: bool = False) -> tuple[str, str]:
    """An indexed label that names one concept only (and, ``whole``, that find_skills does not split)."""
    from tools.lookup import _segments

    per_norm = labels.groupby("norm").uri.nunique()
    rows = index.collection.get(include=["metadatas", "documents"])
    for meta, label in zip(rows["metadatas"], rows["documents"], strict=True):
        if per_norm.get(normalize(label)) == 1 and (not whole or _segments(label) == [label]):
            return meta["uri"], label
    raise AssertionError(f"no unambiguous label in {index.name}")


class Fixed(Encoder):
    """Vectors from a seeded generator: two instances with other seeds are two different models."""

    def __init__(self, name: str, seed: int, version: str = "") -> None:
        self.name, self.dim, self.version, self.seed = name, 8, version, seed

    def _encode(self, texts: list[str], *, query: bool) -> np.ndarray:
        return np.stack([np.random.default_rng([self.seed, len(t), ord(t[0])]).normal(size=8) for t in texts])


def test_a_retrained_model_never_reads_the_old_vectors(tmp_path: Path) -> None:
    old, new = Fixed("linker-abc", 1, "2026-01-01"), Fixed("linker-abc", 2, "2026-02-01")
    cache = tmp_path / "vectors.sqlite"
    first = VectorCache(cache, old).encode(["nurse"])
    again = VectorCache(cache, new).encode(["nurse"])
    np.testing.assert_allclose(again, new.encode(["nurse"]), rtol=1e-6)
    assert not np.allclose(first, again)

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    labels = pd.DataFrame(
        {"label_id": ["L1"], "uri": ["u1"], "lang": ["en"], "label": ["nurse"], "label_type": ["pref"]}
    )
    index = LabelIndex(client, "occupation-linkerabc", old)
    index.build(labels, VectorCache(cache, old))
    assert LabelIndex(client, "occupation-linkerabc", old).count == 1  # same model: reused
    fresh = LabelIndex(client, "occupation-linkerabc", new)
    assert fresh.count == 0  # other weights under the same name: rebuilt, not mixed
    assert fresh.build(labels, VectorCache(cache, new)) == 1


def test_the_dense_floor_follows_the_encoders_cosine_scale() -> None:
    plain = Fixed("e5", 1)
    assert LinkWeights.for_encoder(plain).dense_floor == LinkWeights().dense_floor == 0.80
    tuned = Fixed("linker-abc", 1, "2026-01-01")
    tuned.cosine_map = (np.array([0.7, 0.8, 0.9, 1.0]), np.array([0.2, 0.4, 0.7, 1.0]))
    assert LinkWeights.for_encoder(tuned).dense_floor == pytest.approx(0.4)
    assert tuned.from_base_cosine(0.85) == pytest.approx(0.55)
