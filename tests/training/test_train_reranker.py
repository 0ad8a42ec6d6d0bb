"""The reranker stage end to end on the tiny profile: a loadable cross-encoder the registry resolves, reused
on a re-run, resumed after an interruption, and served as ``<system>+ce`` by the evaluation harness."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import training.reranker
from craft.settings import Settings
from evaluation.harness import SystemFactory
from knowledge.course_skills import load_course_skills
from knowledge.models import ModelManifest, resolve
from knowledge.store import get_knowledge
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.lexical import BM25Retriever
from tools.retrieval.query import build_query
from tools.retrieval.rerank import CrossEncoderReranker, load_reranker
from training import get_stage
from training.reranker import RerankerStage

pytestmark = [pytest.mark.data, pytest.mark.slow]


def _quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture(scope="module")
def tiny(
    isolate: Callable[[Path], Settings], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, ModelManifest, float]:
    settings = isolate(tmp_path_factory.mktemp("tiny"))
    started = time.perf_counter()
    manifest = get_stage("reranker").run(settings, "tiny", console=_quiet())
    return settings, manifest, time.perf_counter() - started


def test_tiny_profile_trains_a_model_resolve_finds(tiny: tuple[Settings, ModelManifest, float]) -> None:
    settings, manifest, seconds = tiny
    assert seconds < 60
    folder, found = resolve(settings, "reranker")
    assert found == manifest and folder == settings.model_dir / manifest.name
    assert manifest.name.startswith("reranker-") and len(manifest.name) == len("reranker-") + 12
    assert (manifest.role, manifest.format, manifest.base_model) == (
        "reranker",
        "cross-encoder",
        "all-MiniLM-L6-v2",
    )
    assert manifest.config["finetune_of"] == "reranker" and manifest.config["profile"] == "tiny"
    assert manifest.config["train"]["max_length"] == 64 and manifest.data_hash
    assert manifest.config["data"]["train_occupations"] == 6
    metrics = manifest.metrics
    assert 0.0 <= metrics["val_ndcg@10"] <= 1.0 and 0.0 <= metrics["val_ndcg@10_first_stage"] <= 1.0
    # the stored blend weight is the best of the grid, so the blend validates at least as well as either end
    assert 0.0 <= metrics["blend_alpha"] <= 1.0
    ends = max(metrics["val_ndcg@10"], metrics["val_ndcg@10_first_stage"])
    assert metrics["val_ndcg@10_blend"] >= ends - 1e-4
    assert metrics["train_steps"] == metrics["max_steps"] > 0 and metrics["train_seconds"] > 0
    assert not metrics["stopped_by_time_budget"] and metrics["resumed_from"] is None
    assert not (settings.cache_dir / "train" / manifest.name).exists()

    scorer = load_reranker(settings)
    scores = scorer.predict([("nurse: patient care", "Patient care basics"), ("nurse", "Java")], batch_size=2)
    assert len(scores) == 2 and all(math.isfinite(float(s)) for s in scores)


def test_a_rerun_reuses_the_model(
    tiny: tuple[Settings, ModelManifest, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, manifest, _ = tiny

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished model must not be retrained")

    monkeypatch.setattr(RerankerStage, "_train", no_training)
    assert get_stage("reranker").run(settings, "tiny", console=_quiet()) == manifest


def test_reranker_serves_as_a_harness_system(tiny: tuple[Settings, ModelManifest, float]) -> None:
    settings, manifest, _ = tiny
    kb = get_knowledge(settings)
    corpus = CourseCorpus.from_knowledge(kb)
    factory = SystemFactory(settings, kb, corpus, load_course_skills(settings))
    system = factory.get("bm25+ce")
    assert isinstance(system, CrossEncoderReranker) and system.name == "bm25+ce"
    assert factory.reranker == manifest.name
    query = build_query(kb, sorted(kb.occupations)[0])
    hits = system.retrieve(query, 5)
    candidates = {h.course_id for h in BM25Retriever(corpus).retrieve(query, 20)}
    assert 0 < len(hits) <= 5 and {h.course_id for h in hits} <= candidates
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_models_list_shows_the_trained_model(
    tiny: tuple[Settings, ModelManifest, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    import craft.cli
    from craft.settings import get_settings

    settings, manifest, _ = tiny
    monkeypatch.setenv("CRAFT_MODEL_DIR", str(settings.model_dir))
    monkeypatch.setattr(craft.cli, "out", Console(width=400))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(craft.cli.app, ["models", "list"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert manifest.name in result.output and "tiny profile" in result.output and "ndcg@10" in result.output


class Interrupted(RuntimeError):
    pass


def test_an_interrupted_training_resumes_from_its_checkpoint(
    train_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import TrainerCallback

    class CrashAtStep3(TrainerCallback):
        stopped = False

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:  # after checkpoint-2 (tiny: save_steps = 2)
                raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(training.reranker, "time_budget", lambda seconds: CrashAtStep3())
        with pytest.raises(Interrupted):
            get_stage("reranker").run(train_settings, "tiny", console=_quiet())
    work = next((train_settings.cache_dir / "train").iterdir())
    assert (work / "checkpoints" / "checkpoint-2").is_dir()
    assert not list(train_settings.model_dir.glob("reranker-*"))

    manifest = get_stage("reranker").run(train_settings, "tiny", console=_quiet())
    assert manifest.name == work.name
    assert manifest.metrics["resumed_from"] == "checkpoint-2"
    assert manifest.metrics["train_steps"] == manifest.metrics["max_steps"]
    assert not work.exists()
