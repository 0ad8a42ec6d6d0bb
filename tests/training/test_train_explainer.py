"""The explainer stage end to end on the tiny profile: a standard peft LoRA adapter the registry resolves
and the generator serves, validation metrics for the zero-shot base and the adapter, reuse on a re-run; and
the dataset builder's teacher path (an OpenAI-compatible teacher, faked): faithfulness filter and cache."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import training.explainer
from craft.settings import Settings
from knowledge.models import ModelManifest, resolve
from knowledge.store import get_knowledge
from tools.explain.facts import build_fact_sheet
from tools.explain.generator import ExplanationGenerator
from tools.explain.prompt import PROMPT_VERSION, Messages
from tools.explain.templates import approx_tokens
from tools.explain.validate import checker_for
from training import ConfigError, get_stage
from training.explainer import ExplainerConfig, ExplainerStage, build_examples

pytestmark = [pytest.mark.data, pytest.mark.slow]
BASE = "SmolLM2-135M-Instruct"


def _quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture(scope="module")
def tiny(
    isolate: Callable[[Path], Settings],
    link_base: Callable[[Settings, str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, ModelManifest, float]:
    settings = isolate(tmp_path_factory.mktemp("explainer"))
    link_base(settings, BASE)
    started = time.perf_counter()
    manifest = get_stage("explainer").run(settings, "tiny", console=_quiet())
    return settings, manifest, time.perf_counter() - started


def test_tiny_profile_trains_a_peft_adapter(tiny: tuple[Settings, ModelManifest, float]) -> None:
    settings, manifest, _ = tiny
    folder, found = resolve(settings, "explainer")
    assert found == manifest and folder == settings.model_dir / manifest.name
    assert (manifest.role, manifest.format, manifest.base_model) == ("explainer", "peft-lora", BASE)
    assert (
        manifest.config["finetune_of"] == "explainer" and manifest.config["prompt_version"] == PROMPT_VERSION
    )
    assert manifest.languages == ["en"]
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and adapter["r"] == 4
    assert adapter["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {"q_proj", "down_proj"} <= set(adapter["target_modules"])
    assert (folder / "adapter_model.safetensors").stat().st_size > 0

    data = manifest.config["data"]
    assert data["train_occupations"] == 1 and data["validation_occupations"] == 2
    assert data["references_template"] == data["train_examples"] + data["validation_examples"]
    metrics = manifest.metrics
    assert metrics["validation_sheets"] == 2
    for who in ("base", "adapter"):
        for rate in ("faithful_rate", "valid_rate", "template_fallback_rate", "rougeL"):
            assert 0.0 <= metrics[f"{who}_{rate}"] <= 1.0
        assert metrics[f"{who}_valid_rate"] <= metrics[f"{who}_faithful_rate"]
        assert metrics[f"{who}_template_fallback_rate"] == pytest.approx(1 - metrics[f"{who}_valid_rate"])
        assert 0 < metrics[f"{who}_avg_tokens"] <= 30
    assert metrics["train_steps"] > 0 and metrics["train_examples_used"] > 0
    assert metrics["trainable_parameters"] > 0
    samples = [json.loads(line) for line in (folder / "validation_samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and all({"sheet", "reference", "base", "adapter"} <= set(s) for s in samples)
    assert not (settings.cache_dir / "train" / manifest.name).exists()


def test_the_generator_serves_the_adapter(tiny: tuple[Settings, ModelManifest, float]) -> None:
    from knowledge.course_skills import load_course_skills

    settings, manifest, _ = tiny
    kb = get_knowledge(settings)
    generator = ExplanationGenerator.from_settings(settings, kb=kb, backend="local", max_tokens=24)
    assert generator.backend is not None and generator.backend.name == manifest.name
    course_skills = load_course_skills(settings)
    cid = sorted(course_skills)[0]
    occupations = sorted(kb.occupation_skills)[:2]
    sheets = [build_fact_sheet(kb, occ, cid, course_skills) for occ in occupations]
    out = generator.explain(sheets)
    assert [e.occupation_uri for e in out] == occupations
    for explanation, sheet in zip(out, sheets, strict=True):
        assert generator.checker.check(explanation.text, sheet).ok
        assert explanation.source == "model" or explanation.fallback_reason
    assert generator.stats.total == 2


def test_a_rerun_reuses_the_model(
    tiny: tuple[Settings, ModelManifest, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, manifest, _ = tiny

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished model must not be retrained")

    monkeypatch.setattr(ExplainerStage, "_train", no_training)
    assert get_stage("explainer").run(settings, "tiny", console=_quiet()) == manifest


class FakeTeacher:
    """An OpenAI-compatible teacher stand-in: every other answer invents a skill."""

    url, model, name = "http://teacher/v1/chat/completions", "big-model", "openai:big-model"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, conversations: Sequence[Messages], *, max_new_tokens: int) -> list[str]:
        self.calls += 1
        answers = []
        for i, conversation in enumerate(conversations):
            title = conversation[-1]["content"].split('Course: "', 1)[1].split('"', 1)[0]
            good = f'"{title}" is a sensible next step for you.'
            invented = " It also teaches you to weld in hyperbaric conditions."
            answers.append(good if i % 2 == 0 else good + invented)
        return answers


def test_teacher_references_are_filtered_and_cached(
    train_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluation.harness import resolve_ground_truth
    from evaluation.splits import split_occupations
    from knowledge.course_skills import load_course_skills

    teacher = FakeTeacher()
    monkeypatch.setattr(training.explainer, "_teacher", lambda settings, config: teacher)
    config = ExplainerConfig.for_profile("tiny", {"validation_per_occupation": 2, "max_tokens": 60})
    kb = get_knowledge(train_settings)
    checker = checker_for(kb)

    def build() -> training.explainer.ExplainerData:
        return build_examples(
            train_settings, config, checker=checker, count_tokens=approx_tokens, progress=False
        )

    data = build()
    summary = data.summary()
    sheets = len(data.validation) + summary["train_sheets"]
    assert summary["teacher"] == "openai:big-model" and summary["teacher_rejected"] == sheets // 2
    assert summary["references_teacher"] == sheets - sheets // 2
    assert all("weld in hyperbaric conditions" not in e.reference for e in data.train + data.validation)
    assert {e.source for e in data.train} == {"teacher", "template"}
    assert build().summary() == summary and teacher.calls == 1  # the second build reads the cache

    _, _, gold = resolve_ground_truth(train_settings, kb, "silver", load_course_skills(train_settings))
    split = split_occupations(kb.occupations, seed=config.seed, pinned_test=gold.queries() if gold else [])
    assert {e.sheet.occupation.uri for e in data.train} <= set(split.train)
    assert {e.sheet.occupation.uri for e in data.validation} <= set(split.validation)
    assert len({e.sheet.occupation.uri for e in data.validation}) == 2 and len(data.validation) == 4


def test_an_openai_teacher_needs_an_endpoint(train_settings: Settings) -> None:
    config = ExplainerConfig.for_profile("tiny", {"teacher": "openai"})
    with pytest.raises(ConfigError, match="CRAFT_OPENAI_BASE_URL"):
        training.explainer._teacher(train_settings.model_copy(update={"openai_base_url": None}), config)
    with pytest.raises(ConfigError, match="unknown config key"):
        ExplainerConfig.for_profile("tiny", {"lora_rank": 4})
