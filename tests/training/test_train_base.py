"""The training framework without a model: profiles, config files, the content key, reuse and resume."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import ClassVar

import pytest
from rich.console import Console

from craft.settings import Settings
from knowledge.models import MANIFEST, resolve
from training import STAGES, ConfigError, StageConfig, get_stage, register
from training.base import Stage, TrainingData, TrainResult, run_key
from training.reranker import RerankerConfig, RerankerStage


def _quiet() -> Console:
    return Console(file=io.StringIO())


# --- profiles and config files ----------------------------------------------------------------------


def test_profiles_scale_from_ci_to_gpu() -> None:
    tiny, cpu, full = (RerankerConfig.for_profile(p) for p in ("tiny", "cpu", "full"))
    assert tiny.train_queries is not None and tiny.train_queries <= 10 and tiny.validation_queries <= 5
    assert 128 <= cpu.max_length <= 256 and cpu.time_budget_s is not None and cpu.time_budget_s <= 45 * 60
    assert full.bf16 and not cpu.bf16 and full.time_budget_s is None
    assert full.max_length == 256 and full.batch_size > cpu.batch_size and full.epochs > cpu.epochs
    assert full.train_queries is None  # every train occupation
    assert {tiny.seed, cpu.seed, full.seed} == {42}


def test_config_file_overrides_the_profile(tmp_path: Path) -> None:
    yaml_file = tmp_path / "reranker.yaml"
    yaml_file.write_text("max_length: 160\nlearning_rate: 3.0e-5\ntrain_queries: null\n")
    config = RerankerConfig.load("cpu", yaml_file)
    assert (config.max_length, config.learning_rate, config.train_queries) == (160, 3e-5, None)
    assert config.batch_size == RerankerConfig.for_profile("cpu").batch_size  # the rest: the profile's

    json_file = tmp_path / "reranker.json"
    json_file.write_text(json.dumps({"epochs": 2, "target": "binary"}))
    config = RerankerConfig.load("tiny", json_file)
    assert (config.epochs, config.target, config.max_length) == (2.0, "binary", 64)
    assert RerankerConfig.load("tiny", None) == RerankerConfig.for_profile("tiny")


def test_unknown_config_keys_fail_clearly(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("max_length: 128\nlearning_rat: 0.001\nepochz: 3\n")
    with pytest.raises(ConfigError) as info:
        RerankerConfig.load("cpu", path)
    message = str(info.value)
    assert str(path) in message and "'epochz', 'learning_rat'" in message and "learning_rate" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_length: many\n", "max_length"),
        ("max_length: 4\n", "max_length"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("max_length: [\n", "not valid"),
    ],
)
def test_bad_config_values_fail_clearly(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        RerankerConfig.load("cpu", path)


def test_unknown_profile_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown profile 'gpu'"):
        RerankerConfig.for_profile("gpu")
    with pytest.raises(ConfigError, match="not found"):
        RerankerConfig.load("cpu", tmp_path / "nope.yaml")


def test_stage_registry() -> None:
    assert STAGES["reranker"] is RerankerStage
    assert isinstance(get_stage("reranker"), RerankerStage)
    # every stage of the issue is registered (the CLI's `craft train <stage>` commands come from here)
    assert sorted(STAGES) == ["explainer", "linker", "llm-ranker", "mlm", "ner", "reranker", "retriever"]
    with pytest.raises(KeyError, match="unknown stage 'nope'; known: explainer, linker, llm-ranker"):
        get_stage("nope")

    class Impostor(RerankerStage):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)
    assert STAGES["reranker"] is RerankerStage


def test_run_key_depends_on_data_config_and_base() -> None:
    config = RerankerConfig.for_profile("tiny")
    key = run_key("reranker", "data", config, "base")
    assert len(key) == 12 and key == run_key("reranker", "data", config, "base")
    changed = config.model_copy(update={"learning_rate": 1e-4})
    others = {
        run_key("reranker", "other", config, "base"),
        run_key("reranker", "data", changed, "base"),
        run_key("reranker", "data", config, "other"),
        run_key("retriever", "data", config, "base"),
    }
    assert key not in others and len(others) == 4


# --- the Stage contract with a stand-in stage (no model, no data) -------------------------------------


class Interrupted(RuntimeError):
    pass


class CountingConfig(StageConfig):
    PROFILE_DEFAULTS: ClassVar = {"tiny": {"epochs": 1.0}, "full": {"epochs": 3.0, "bf16": True}}
    steps: int = 3


class CountingStage(Stage):
    """Writes one file per step into its work dir; a step already there is skipped (resume)."""

    name = "counting"
    role = "test"
    config_class = CountingConfig

    def __init__(self, fail_at: int | None = None) -> None:
        self.trained, self.fail_at = 0, fail_at
        self.steps_run: list[int] = []

    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        return TrainingData(hash="d" * 64, summary={"examples": 3})

    def _train(self, settings, config, data, *, work, out, console) -> TrainResult:  # type: ignore[no-untyped-def]
        assert isinstance(config, CountingConfig)
        self.trained += 1
        for step in range(config.steps):
            done = work / f"step-{step}"
            if done.exists():
                continue
            if step == self.fail_at:
                raise Interrupted(step)
            done.write_text("ok")
            self.steps_run.append(step)
        out.mkdir(parents=True)
        (out / "weights.bin").write_text("w")
        return TrainResult(
            format="test", base_model="none", base_source="test", languages=["en"], metrics={"score": 1.0}
        )


@pytest.fixture
def tmp_settings(tmp_path: Path) -> Settings:
    return Settings(model_dir=tmp_path / "models", cache_dir=tmp_path / "cache")


def test_run_registers_a_manifest_that_resolve_finds(tmp_settings: Settings) -> None:
    stage = CountingStage()
    manifest = stage.run(tmp_settings, "tiny", console=_quiet())
    key = run_key("counting", "d" * 64, CountingConfig.for_profile("tiny"))
    assert manifest.name == f"counting-{key}"
    assert manifest.config["finetune_of"] == "counting" and manifest.config["profile"] == "tiny"
    assert manifest.config["train"]["epochs"] == 1.0 and manifest.data_hash == "d" * 64
    assert manifest.metrics["score"] == 1.0 and "total_seconds" in manifest.metrics
    assert manifest.source.startswith("craft train counting --profile tiny")
    folder, found = resolve(tmp_settings, "counting")
    assert found == manifest and (folder / "weights.bin").exists() and (folder / MANIFEST).exists()
    assert not (tmp_settings.cache_dir / "train" / manifest.name).exists()  # checkpoints dropped when done
    assert [p.name for p in tmp_settings.model_dir.iterdir()] == [manifest.name]  # no staging left


def test_a_finished_model_is_not_retrained(tmp_settings: Settings) -> None:
    stage = CountingStage()
    first = stage.run(tmp_settings, "tiny", console=_quiet())
    again = stage.run(tmp_settings, "tiny", console=_quiet())
    assert again == first and stage.trained == 1
    other = stage.run(tmp_settings, "full", console=_quiet())  # another config: another model
    assert other.name != first.name and stage.trained == 2
    assert resolve(tmp_settings, "counting")[1].name in {first.name, other.name}


def test_an_interrupted_run_resumes(tmp_settings: Settings) -> None:
    config = CountingConfig.for_profile("tiny", {"steps": 4})
    crashing = CountingStage(fail_at=2)
    with pytest.raises(Interrupted):
        crashing.run(tmp_settings, "tiny", config, console=_quiet())
    assert crashing.steps_run == [0, 1]
    assert not list(tmp_settings.model_dir.glob("counting-*/manifest.json"))  # nothing registered
    work = tmp_settings.cache_dir / "train" / f"counting-{run_key('counting', 'd' * 64, config)}"
    assert sorted(p.name for p in work.iterdir()) == ["step-0", "step-1"]

    resumed = CountingStage()
    manifest = resumed.run(tmp_settings, "tiny", config, console=_quiet())
    assert resumed.steps_run == [2, 3] and manifest.name == work.name
    assert not work.exists()


def test_wrong_config_class_is_rejected(tmp_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="needs a CountingConfig"):
        CountingStage().run(tmp_settings, "tiny", RerankerConfig.for_profile("tiny"), console=_quiet())


def test_resume_skips_a_checkpoint_killed_while_saving(tmp_path: Path) -> None:
    """A kill while saving leaves a newer folder without trainer state: resume from the one before."""
    from training.base import last_checkpoint

    complete = tmp_path / "checkpoint-100"
    complete.mkdir()
    (complete / "trainer_state.json").write_text("{}")
    torn = tmp_path / "checkpoint-200"
    torn.mkdir()
    (torn / "config.json").write_text("{}")
    (torn / ".tmpZnkI4z").write_bytes(b"partial weights")
    out = io.StringIO()

    assert last_checkpoint(tmp_path, Console(file=out), "ner") == str(complete)
    assert not torn.exists()
    assert "incomplete checkpoint" in out.getvalue()
    assert last_checkpoint(tmp_path / "none", Console(file=out), "ner") is None
