"""The retriever stage on the tiny profile: a bi-encoder the registry resolves, that encodes queries with its
stored instruction, reused on a re-run, resumed after an interruption, trained only on train occupations, and
served by ``routed-ft`` and by ``course_encoders = {"en": "retriever"}``; plus the batch builder's promise."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

import training.retriever
from craft.settings import Settings
from evaluation.harness import SystemFactory
from knowledge.course_skills import load_course_skills
from knowledge.encoders import SentenceTransformerEncoder, get_encoder
from knowledge.models import ModelManifest, resolve
from knowledge.store import get_knowledge
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.dense import VIEWS, DenseRetriever, view_text
from tools.retrieval.query import build_query
from tools.retrieval.registry import (
    RETRIEVER,
    LanguageRoutedRetriever,
    collection_name,
    course_retriever,
    with_trained_retriever,
)
from training import ConfigError, get_stage
from training.base import TrainingData
from training.retriever import QUERY_INSTRUCTION, RetrieverConfig, RetrieverData, false_negative_mask

data = pytest.mark.data
slow = pytest.mark.slow
MINILM = "all-MiniLM-L6-v2"
Tiny = tuple[Settings, ModelManifest, RetrieverData, float]


def _quiet() -> Console:
    return Console(file=io.StringIO())


# --- the loss's mask -----------------------------------------------------------------------------------


def test_courses_relevant_to_an_anchor_are_masked_out_of_its_softmax() -> None:
    keys = [("nurse", ("care", "java")), ("coder", ("java", "sql")), ("nurse", ("ethics", "golf"))]
    relevant = {"nurse": {"care", "ethics"}, "coder": {"java", "sql", "care"}}
    mask = false_negative_mask([0, 1, 2], keys, relevant)
    # columns: positives care, java, ethics, then negatives java, sql, golf
    assert mask.tolist() == [
        [False, False, True, False, False, False],  # nurse: its other positive "ethics" is no negative
        [True, False, False, True, True, False],  # coder: "care", its positive again, "sql": all relevant
        [True, False, False, False, False, False],
    ]
    assert not false_negative_mask([1, 0], keys, {}).any()  # nothing relevant, nothing masked


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="multiple of eval_steps"):
        RetrieverConfig.for_profile("cpu", {"eval_steps": 25, "save_steps": 30})
    with pytest.raises(ConfigError, match="hard_negatives"):
        RetrieverConfig.for_profile("cpu", {"hard_negatives": 0, "dense_negatives": 0})
    assert training.retriever.RetrieverStage.name == RETRIEVER  # the stage trains what the runtime resolves
    cpu = RetrieverConfig.for_profile("cpu")
    assert (cpu.temperature, cpu.max_seq_length, cpu.base_model) == (0.02, 128, MINILM)
    assert cpu.time_budget_s is not None and cpu.time_budget_s <= 40 * 60
    assert RetrieverConfig.for_profile("full").bf16 and RetrieverConfig.for_profile("full").batch_size >= 128


def test_the_last_step_is_evaluated_and_checkpointed() -> None:
    from transformers import TrainerControl, TrainerState

    callback = training.retriever._evaluate_last_step()
    state, control = TrainerState(global_step=5, max_steps=10), TrainerControl()
    callback.on_step_end(None, state, control)
    assert not control.should_evaluate and not control.should_save
    control.should_training_stop = True  # the time budget ran out at step 5
    callback.on_step_end(None, state, control)
    assert control.should_evaluate and control.should_save
    state, control = TrainerState(global_step=10, max_steps=10), TrainerControl()
    callback.on_step_end(None, state, control)
    assert control.should_evaluate and control.should_save


def test_collections_are_keyed_by_encoder() -> None:
    assert collection_name("en", "retriever-0123456789ab") == "courses-en-retriever-0123456789ab"
    assert collection_name("en", MINILM) != collection_name("en", "retriever-0123456789ab")
    assert collection_name("*", "multilingual-e5-small-torch") == "courses-multilingual-e5-small-torch"


# --- the tiny profile end to end ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(isolate: Callable[[Path], Settings], tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    settings = isolate(tmp_path_factory.mktemp("tiny"))
    captured: list[TrainingData] = []
    stage_class = training.retriever.RetrieverStage
    original = stage_class._data

    def keep(self: Any, settings: Settings, config: Any) -> TrainingData:
        captured.append(original(self, settings, config))
        return captured[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage_class, "_data", keep)
        started = time.perf_counter()
        manifest = get_stage(RETRIEVER).run(settings, "tiny", console=_quiet())
        seconds = time.perf_counter() - started
    return settings, manifest, captured[0].payload, seconds


@data
@slow
def test_tiny_profile_trains_a_model_resolve_finds(tiny: Tiny) -> None:
    settings, manifest, payload, seconds = tiny
    assert seconds < 240
    folder, found = resolve(settings, RETRIEVER)
    assert found == manifest and folder == settings.model_dir / manifest.name
    assert manifest.name.startswith("retriever-") and len(manifest.name) == len("retriever-") + 12
    assert (manifest.role, manifest.format, manifest.base_model) == (
        "encoder",
        "sentence-transformers",
        MINILM,
    )
    config = manifest.config
    assert config["finetune_of"] == RETRIEVER and config["profile"] == "tiny" and manifest.data_hash
    assert config["query_prefix"] == QUERY_INSTRUCTION and config["passage_prefix"] == ""
    assert config["max_seq_length"] == 32 and config["views"] == list(VIEWS)
    assert config["loss"] == "MultipleNegativesRankingLoss(scale=50)"
    assert config["data"]["train_rows"] == len(payload.rows) > 0
    assert (
        config["data"]["negatives_by_source"]["dense"] > 0
        and config["data"]["negatives_by_source"]["bm25"] > 0
    )
    metrics = manifest.metrics
    for key in ("val_ndcg@10", "val_ndcg@10_pretrained", "val_recall@10", "val_recall@10_pretrained"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["validation_occupations"] == 3 and metrics["validation_catalog"] > 0
    assert 0 < metrics["train_steps"] <= metrics["max_steps"] and metrics["train_seconds"] > 0
    history = metrics["eval_history"]
    assert history and [h["step"] for h in history] == list(range(1, len(history) + 1))  # eval_steps = 1
    assert metrics["val_sampled_ndcg@10_best"] == max(h["ndcg@10"] for h in history)
    assert metrics["best_step"] in {h["step"] for h in history}
    assert not metrics["stopped_by_time_budget"] and metrics["resumed_from"] is None
    assert 0.0 <= metrics["masked_in_batch_share"] < 1.0
    assert not (settings.cache_dir / "train" / manifest.name).exists()


@data
@slow
def test_the_model_encodes_queries_with_its_stored_instruction(tiny: Tiny) -> None:
    from sentence_transformers import SentenceTransformer

    settings, manifest, _, _ = tiny
    folder, _ = resolve(settings, RETRIEVER)
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    assert model.prompts["query"] == QUERY_INSTRUCTION and model.default_prompt_name is None
    assert model.max_seq_length == 32
    text = "nurse. nurse. Nurses care for patients."
    prompted = model.encode([text], prompt_name="query", normalize_embeddings=True)
    assert np.allclose(
        prompted, model.encode([QUERY_INSTRUCTION + text], normalize_embeddings=True), atol=1e-6
    )
    assert not np.allclose(prompted, model.encode([text], normalize_embeddings=True), atol=1e-3)
    # the runtime encoder (what course_encoders = {"en": "retriever"} loads) applies the same prompt
    encoder = get_encoder(RETRIEVER, settings)
    assert isinstance(encoder, SentenceTransformerEncoder) and encoder.name == manifest.name
    assert np.allclose(encoder.encode([text], query=True), prompted, atol=1e-5)
    passage = model.encode(["Patient care basics"], normalize_embeddings=True)
    assert np.allclose(encoder.encode(["Patient care basics"], query=False), passage, atol=1e-5)


@data
@slow
def test_a_rerun_reuses_the_model(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, manifest, _, _ = tiny

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished model must not be retrained")

    monkeypatch.setattr(training.retriever.RetrieverStage, "_train", no_training)
    assert get_stage(RETRIEVER).run(settings, "tiny", console=_quiet()) == manifest


@data
@slow
def test_training_rows_come_from_train_occupations_only(tiny: Tiny) -> None:
    settings, _, payload, _ = tiny
    split = payload.pairs.split
    train_side, held_out = set(split.train), set(split.validation) | set(split.test) | set(split.pinned_test)
    occupations = {r.occupation_uri for r in payload.rows}
    assert occupations and occupations <= train_side and not occupations & held_out
    assert set(payload.validation_occupations) <= set(split.validation)
    assert set(payload.eval_occupations) <= set(payload.validation_occupations)
    kb = get_knowledge(settings)
    corpus = CourseCorpus.from_knowledge(kb)
    for row in payload.rows:  # the texts the runtime embeds, the prompt in front of the query view
        assert row.negative_id not in payload.relevant[row.occupation_uri]
        assert row.positive_id in payload.relevant[row.occupation_uri]
        assert row.anchor == QUERY_INSTRUCTION + view_text(build_query(kb, row.occupation_uri), row.view)
        assert row.positive == corpus.texts[corpus.position[row.positive_id]]
        assert row.negative == corpus.texts[corpus.position[row.negative_id]]


def _english_only(settings: Settings) -> Settings:
    return settings.model_copy(update={"course_encoders": {"en": MINILM}})


def _check_hits(corpus: CourseCorpus, query: Any, hits: list[Any], k: int) -> None:
    mask = corpus.mask(query.filters)
    assert 0 < len(hits) <= k and all(mask[corpus.position[h.course_id]] for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@data
@slow
def test_routed_ft_serves_the_trained_retriever(tiny: Tiny) -> None:
    settings, manifest, _, _ = tiny
    settings = _english_only(settings)
    assert with_trained_retriever(settings) == {"en": manifest.name}
    kb = get_knowledge(settings)
    corpus = CourseCorpus.from_knowledge(kb)
    factory = SystemFactory(settings, kb, corpus, load_course_skills(settings))
    system = factory.get("routed-ft")
    assert isinstance(system, LanguageRoutedRetriever) and system.name == "routed-ft"
    assert factory.retriever == manifest.name
    for occupation in sorted(kb.occupations)[:3]:
        query = build_query(kb, occupation)
        _check_hits(corpus, query, system.retrieve(query, 5), 5)
    built = system.retriever_for(build_query(kb, sorted(kb.occupations)[0]))
    assert isinstance(built, DenseRetriever) and built.encoder.name == manifest.name and built.views == VIEWS


@data
@slow
def test_course_encoders_can_name_the_retriever(tiny: Tiny, tmp_path: Path) -> None:
    import chromadb

    settings, manifest, _, _ = tiny
    settings = settings.model_copy(update={"course_encoders": {"en": RETRIEVER}})
    kb = get_knowledge(settings)
    corpus = CourseCorpus.from_knowledge(kb)
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    product = course_retriever(settings, corpus, client=client)
    query = build_query(kb, sorted(kb.occupations)[1])
    _check_hits(corpus, query, product.retrieve(query, 5), 5)
    assert isinstance(product, LanguageRoutedRetriever)
    built = product.retriever_for(query)
    assert isinstance(built, DenseRetriever) and built.collection is not None
    assert built.collection.name == collection_name("en", manifest.name)
    assert (built.collection.metadata or {}).get("encoder") == built.encoder.identity


@data
@slow
def test_a_base_model_that_is_no_bi_encoder_is_refused(train_settings: Settings) -> None:
    fake = train_settings.model_dir / "some-cross-encoder"
    fake.mkdir()
    manifest = {"name": fake.name, "role": "reranker", "format": "cross-encoder", "base_model": "x"}
    (fake / "manifest.json").write_text(json.dumps({**manifest, "source": "test", "created": "2026-01-01"}))
    config = RetrieverConfig.for_profile("tiny", {"base_model": fake.name})
    with pytest.raises(ConfigError, match="fine-tunes a sentence-transformers encoder"):
        get_stage(RETRIEVER).run(train_settings, "tiny", config, console=_quiet())


class Interrupted(RuntimeError):
    pass


@data
@slow
def test_an_interrupted_training_resumes_from_its_checkpoint(
    train_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import TrainerCallback

    class CrashAtStep2(TrainerCallback):
        stopped = False

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 2:  # after checkpoint-1 (tiny: evaluate and save every step)
                raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(training.retriever, "time_budget", lambda seconds: CrashAtStep2())
        with pytest.raises(Interrupted):
            get_stage(RETRIEVER).run(train_settings, "tiny", console=_quiet())
    work = next((train_settings.cache_dir / "train").iterdir())
    assert (work / "checkpoints" / "checkpoint-1").is_dir()
    assert not list(train_settings.model_dir.glob("retriever-*"))

    manifest = get_stage(RETRIEVER).run(train_settings, "tiny", console=_quiet())
    assert manifest.name == work.name and manifest.metrics["resumed_from"] == "checkpoint-1"
    assert manifest.metrics["train_steps"] == manifest.metrics["max_steps"]
    assert [h["step"] for h in manifest.metrics["eval_history"]] == [1, 2]  # step 1's evaluation kept
    assert not work.exists()
