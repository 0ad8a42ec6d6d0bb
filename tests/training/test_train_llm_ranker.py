"""The llm-ranker stage end to end on the tiny profile: a peft LoRA adapter the registry resolves and the
runtime loads over the registry's base model, validated against the untrained model, reused on a re-run,
resumed after an interruption, and served as ``<system>+llm`` by the evaluation harness."""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

import training.llm_ranker
from craft.settings import Settings
from evaluation.harness import SystemFactory
from knowledge.course_skills import load_course_skills
from knowledge.models import ModelManifest, resolve
from knowledge.store import get_knowledge
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.lexical import BM25Retriever
from tools.retrieval.llm_rank import BASE_LLM, LLMRanker, load_llm_scorer, pairwise_passes
from tools.retrieval.query import build_query
from training import get_stage
from training.llm_ranker import LLMRankerStage, calibration

pytestmark = [pytest.mark.data, pytest.mark.slow]

STAGE = "llm-ranker"


def _quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture(scope="module")
def isolate_llm(
    isolate: Callable[[Path], Settings], link_base: Callable[[Settings, str], Path]
) -> Callable[[Path], Settings]:
    """An empty registry with the base MiniLM (dense first stage) and SmolLM2 linked in."""

    def make(root: Path) -> Settings:
        settings = isolate(root)
        link_base(settings, BASE_LLM)
        return settings

    return make


@pytest.fixture(scope="module")
def tiny(
    isolate_llm: Callable[[Path], Settings], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, ModelManifest, float]:
    settings = isolate_llm(tmp_path_factory.mktemp("tiny"))
    started = time.perf_counter()
    manifest = get_stage(STAGE).run(settings, "tiny", console=_quiet())
    return settings, manifest, time.perf_counter() - started


def test_tiny_profile_trains_a_peft_adapter_resolve_finds(
    tiny: tuple[Settings, ModelManifest, float],
) -> None:
    settings, manifest, seconds = tiny
    assert seconds < 300  # ≈ 1 min on an idle 2-core machine
    folder, found = resolve(settings, STAGE)
    assert found == manifest and folder == settings.model_dir / manifest.name
    assert manifest.name.startswith(f"{STAGE}-") and len(manifest.name) == len(STAGE) + 13
    assert (manifest.role, manifest.format, manifest.base_model) == ("reranker", "peft-lora", BASE_LLM)
    assert manifest.config["finetune_of"] == STAGE and manifest.config["profile"] == "tiny"
    assert manifest.config["train"]["lora_r"] == 4 and manifest.config["train"]["course_tokens"] == 12
    assert manifest.config["data"]["train_occupations"] == 2 and manifest.data_hash

    # the standard peft layout (what vLLM --enable-lora loads): an adapter, not a copy of the base weights
    files = {p.name for p in folder.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "manifest.json"} <= files
    assert "model.safetensors" not in files
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and adapter["task_type"] == "CAUSAL_LM" and adapter["r"] == 4
    assert set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert adapter["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"

    metrics = manifest.metrics
    assert metrics["train_steps"] == metrics["max_steps"] > 0 and metrics["train_seconds"] > 0
    assert not metrics["stopped_by_time_budget"] and metrics["resumed_from"] is None
    assert 0 < metrics["trainable_parameters"] < 1_000_000  # LoRA rank 4 on the attention projections
    assert metrics["train_prompt_tokens_max"] <= 200
    for key in ("val_ndcg@10", "val_ndcg@10_base", "val_ndcg@10_first_stage", "val_ndcg@10_blend"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert (
        metrics["val_ndcg@10_blend"] >= max(metrics["val_ndcg@10"], metrics["val_ndcg@10_first_stage"]) - 1e-4
    )
    for key in ("val_auc", "val_auc_base"):
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0, key
    for key in ("calibration", "calibration_base"):
        assert set(metrics[key]) >= {"mean_p_yes_relevant", "mean_p_yes_other", "yes_rate", "p_yes_std"}
        assert 0.0 <= metrics[key]["yes_rate"] <= 1.0
    # tiny: 5 candidates per query in one batch of 5, after the shared prefix; pairwise would need 12
    assert metrics["forward_passes_per_query"] == 2.0
    assert metrics["pairwise_forward_passes_per_query"] == pairwise_passes(5) == 12
    assert 0.0 < metrics["shared_prefix_token_saving"] < 1.0
    assert not (settings.cache_dir / "train" / manifest.name).exists()


def test_the_runtime_loads_base_plus_adapter_and_it_changed_the_scores(
    tiny: tuple[Settings, ModelManifest, float],
) -> None:
    settings, _, _ = tiny
    trained = load_llm_scorer(settings)
    base = load_llm_scorer(settings, BASE_LLM, adapter=False)
    assert (trained.skill_tokens, trained.course_tokens) == (12, 12)  # the budgets it was trained with
    courses = ["Patient care basics: hygiene, wound care", "Java programming for beginners"]
    p_trained = trained.score("nurse", ["patient care"], courses)
    p_base = base.score("nurse", ["patient care"], courses)
    assert p_trained.shape == p_base.shape == (2,)
    assert all(0.0 < p < 1.0 and math.isfinite(p) for p in [*p_trained, *p_base])
    assert np.abs(p_trained - p_base).max() > 1e-6  # the adapter is applied (LoRA B starts at zero)


def test_a_rerun_reuses_the_model(
    tiny: tuple[Settings, ModelManifest, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, manifest, _ = tiny

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished model must not be retrained")

    monkeypatch.setattr(LLMRankerStage, "_train", no_training)
    assert get_stage(STAGE).run(settings, "tiny", console=_quiet()) == manifest


def test_llm_ranker_serves_as_a_harness_system(tiny: tuple[Settings, ModelManifest, float]) -> None:
    settings, manifest, _ = tiny
    kb = get_knowledge(settings)
    corpus = CourseCorpus.from_knowledge(kb)
    factory = SystemFactory(settings, kb, corpus, load_course_skills(settings))
    system = factory.get("bm25+llm")
    assert isinstance(system, LLMRanker) and system.name == "bm25+llm" and system.depth == 20
    assert factory.llm_ranker == manifest.name
    assert system.alpha == manifest.metrics["blend_alpha"]
    query = build_query(kb, sorted(kb.occupations)[0])
    hits = system.retrieve(query, 5)
    candidates = {h.course_id for h in BM25Retriever(corpus).retrieve(query, 20)}
    assert 0 < len(hits) <= 5 and {h.course_id for h in hits} <= candidates <= set(corpus.ids)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_calibration_tells_a_yes_sayer_from_a_discriminating_model() -> None:
    relevant = np.array([True, True, False, False])
    yes_to_all = calibration(np.array([0.9, 0.8, 0.85, 0.95]), relevant)
    assert (
        yes_to_all["yes_rate"] == 1.0 and yes_to_all["mean_p_yes_other"] > yes_to_all["mean_p_yes_relevant"]
    )
    good = calibration(np.array([0.9, 0.7, 0.2, 0.1]), relevant)
    assert good == {
        "mean_p_yes_relevant": 0.8,
        "mean_p_yes_other": 0.15,
        "yes_rate": 0.5,
        "p_yes_std": pytest.approx(0.3345, abs=1e-4),
        "relevant_share": 0.5,
    }
    with pytest.raises(ValueError, match="no scores"):
        calibration(np.array([]), np.array([], dtype=bool))


class Interrupted(RuntimeError):
    pass


def test_an_interrupted_training_resumes_from_its_checkpoint(
    isolate_llm: Callable[[Path], Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import TrainerCallback

    settings = isolate_llm(tmp_path)

    class CrashAtStep3(TrainerCallback):
        stopped = False

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:  # after checkpoint-2 (tiny: save_steps = 2)
                raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(training.llm_ranker, "time_budget", lambda seconds: CrashAtStep3())
        with pytest.raises(Interrupted):
            get_stage(STAGE).run(settings, "tiny", console=_quiet())
    work = next((settings.cache_dir / "train").iterdir())
    assert (work / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert not list(settings.model_dir.glob(f"{STAGE}-*"))

    manifest = get_stage(STAGE).run(settings, "tiny", console=_quiet())
    assert manifest.name == work.name
    assert manifest.metrics["resumed_from"] == "checkpoint-2"
    assert manifest.metrics["train_steps"] == manifest.metrics["max_steps"] == 3
    assert not work.exists()
