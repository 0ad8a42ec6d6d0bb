"""The training framework: profiles, stage configs, the ``Stage`` contract and the stage registry.

Every model of the pipeline is a ``Stage``: one public ``run(settings, profile, config)`` that returns the
registered ``ModelManifest``. The framework, not each stage, owns what makes runs reproducible and cheap to
repeat:

* **profiles** — ``tiny`` (seconds: CI, a handful of examples), ``cpu`` (time-boxed ≤ 45 min on 2 cores; the
  models we ship), ``full`` (a GPU: bf16, bigger batches, more epochs). A config file overrides any field.
* **a content key** — the output is ``<model_dir>/<stage>-<hash12>``, the hash over the training data, the
  config and the base model, so a finished model is never retrained and a change of any input trains anew.
* **resumable work** — checkpoints live in ``<cache_dir>/train/<stage>-<hash12>`` until the model is
  registered, so a re-run after an interruption continues from the last checkpoint.
* **seeds** — ``seed_everything`` before data sampling and before training.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar, get_args

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from craft.settings import Settings
from knowledge.models import MANIFEST, ModelManifest, read_manifest, write_manifest

Profile = Literal["tiny", "cpu", "full"]
PROFILES: tuple[str, ...] = get_args(Profile)
KEY_LENGTH = 12


class ConfigError(ValueError):
    """A config file or override that does not fit the stage: the message names the offending keys."""


class StageConfig(BaseModel):
    """Hyper-parameters shared by every stage; subclasses add theirs and per-profile defaults.

    Field defaults are the ``cpu`` profile unless ``PROFILE_DEFAULTS`` says otherwise, so the config of the
    shipped models reads straight from the class.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    PROFILE_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}

    seed: int = Field(42, description="Seeds data sampling, weight init, shuffling and dropout.")
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of the steps spent warming up.")
    weight_decay: float = Field(0.01, ge=0)
    bf16: bool = Field(False, description="bf16 mixed precision; used only on a GPU that supports it.")
    save_steps: int = Field(100, ge=1, description="Checkpoint every N optimizer steps (resumable runs).")
    time_budget_s: float | None = Field(
        None, gt=0, description="Stop training after this many seconds (the cpu profile's time box)."
    )

    @classmethod
    def for_profile(cls, profile: str, overrides: dict[str, Any] | None = None) -> Self:
        """The profile's defaults with ``overrides`` on top; unknown keys or bad values: ``ConfigError``."""
        if profile not in PROFILES:
            raise ConfigError(f"unknown profile {profile!r}: {', '.join(PROFILES)}")
        values = {**cls.PROFILE_DEFAULTS.get(profile, {}), **(overrides or {})}
        unknown = sorted(set(overrides or {}) - set(cls.model_fields))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
                f"known: {', '.join(sorted(cls.model_fields))}"
            )
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ConfigError(f"invalid {cls.__name__} for profile {profile!r}:\n{error}") from error

    @classmethod
    def load(cls, profile: str, path: Path | None = None) -> Self:
        """``for_profile`` with the overrides of a YAML or JSON file (a flat mapping of field → value)."""
        if path is None:
            return cls.for_profile(profile)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        text = path.read_text(encoding="utf-8")
        try:
            raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as error:
            kind = path.suffix.lstrip(".") or "YAML"
            raise ConfigError(f"config file {path} is not valid {kind}: {error}") from error
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(
                f"config file {path} must hold a mapping of field: value, not {type(raw).__name__}"
            )
        try:
            return cls.for_profile(profile, raw)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from error

    def fingerprint(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


@dataclass
class TrainingData:
    """What a stage trains and validates on; ``hash`` identifies it (part of the model's key)."""

    hash: str
    summary: dict[str, Any] = field(default_factory=dict)
    payload: Any = None


@dataclass
class TrainResult:
    """What ``Stage._train`` wrote into its output folder, for the manifest."""

    format: str
    base_model: str
    base_source: str
    languages: list[str]
    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Python, NumPy and (when loaded) torch/transformers RNGs, so two runs sample and train alike."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        from transformers import set_seed
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    set_seed(seed)


def time_budget(seconds: float | None) -> Any:
    """A ``transformers`` trainer callback that ends training once ``seconds`` of it have passed (the cpu
    profile's time box); ``.stopped`` tells whether it did. A resumed run gets a fresh budget."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.stopped, self.started = False, time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if seconds is not None and time.perf_counter() - self.started > seconds:
                self.stopped = True
                control.should_training_stop = True
            return control

    return TimeBudget()


def accelerator(config: StageConfig, console: Console) -> tuple[bool, bool]:
    """``(cuda, bf16)``: bf16 only where the config asks for it and the GPU supports it (else a warning)."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = bool(config.bf16 and cuda and torch.cuda.is_bf16_supported())
    if config.bf16 and not bf16:
        console.print("[yellow]bf16 requested but no bf16-capable GPU: training in float32[/yellow]")
    return cuda, bf16


def trainer_arguments(
    config: StageConfig, checkpoints: Path, *, cuda: bool, bf16: bool, **overrides: Any
) -> dict[str, Any]:
    """The ``TrainingArguments`` every stage shares (seeded, checkpointing every ``save_steps`` for resuming,
    no hub, no reporting); ``overrides`` replace or add stage-specific ones."""
    return {
        "output_dir": str(checkpoints),
        "num_train_epochs": config.epochs,
        "per_device_train_batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "warmup_steps": config.warmup_ratio,
        "weight_decay": config.weight_decay,
        "bf16": bf16,
        "use_cpu": not cuda,
        "seed": config.seed,
        "data_seed": config.seed,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": 1,
        "eval_strategy": "no",
        "logging_steps": max(1, min(50, config.save_steps)),
        "report_to": "none",
        "dataloader_num_workers": 0,
        **overrides,
    }


def last_checkpoint(checkpoints: Path, console: Console, stage: str) -> str | None:
    """The newest *complete* checkpoint an interrupted run resumes from (``None``: start afresh), announced.

    A run killed while saving leaves a ``checkpoint-N`` folder without ``trainer_state.json`` (the Trainer
    writes it last) or with a half-written temporary file; resuming from it fails, so such folders are
    removed and the previous complete checkpoint is used.
    """
    if not checkpoints.is_dir():
        return None
    found = sorted(
        (p for p in checkpoints.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)),
        key=lambda p: int(p.name.split("-")[1]),
        reverse=True,
    )
    for folder in found:
        if (folder / "trainer_state.json").is_file() and not any(folder.glob(".tmp*")):
            console.print(f"{stage}: resuming from {folder}")
            return str(folder)
        console.print(f"{stage}: removing incomplete checkpoint {folder} (interrupted while saving)")
        shutil.rmtree(folder, ignore_errors=True)
    return None


def digest(payload: object) -> str:
    """Stable SHA-256 of any JSON-able value (sorted keys)."""
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(raw).hexdigest()


def run_key(stage: str, data_hash: str, config: StageConfig, base: str = "") -> str:
    """``hash12`` of (stage, training data, config, base model): the model folder's suffix."""
    return digest({"stage": stage, "data": data_hash, "config": config.fingerprint(), "base": base})[
        :KEY_LENGTH
    ]


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


class Stage(ABC):
    """One trainable model of the pipeline; subclasses implement ``_data`` and ``_train``.

    ``name`` is the CLI name, the folder prefix and the registry name the model stands in for
    (``config.finetune_of``), so ``resolve(settings, name)`` finds the newest trained one.
    """

    name: ClassVar[str]
    role: ClassVar[str]
    config_class: ClassVar[type[StageConfig]] = StageConfig
    headline: ClassVar[tuple[str, ...]] = ()
    """Metric keys ``craft models list`` shows for this stage's models (its own figure of merit first)."""

    def run(
        self,
        settings: Settings,
        profile: Profile = "cpu",
        config: StageConfig | None = None,
        *,
        console: Console | None = None,
    ) -> ModelManifest:
        """Train (or reuse) the model of this stage and return its registered manifest."""
        console = console or Console(stderr=True)
        config, data, key = self.prepare(settings, profile, config, console=console)
        name = f"{self.name}-{key}"
        target = settings.model_dir / name
        if (target / MANIFEST).exists():
            console.print(f"[green]✓[/green] {name} already trained ({target}); not retraining")
            return read_manifest(target)

        work = settings.cache_dir / "train" / name
        work.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        console.print(f"{self.name}: training {name} ({profile} profile) → {target}; checkpoints in {work}")
        started = time.perf_counter()
        seed_everything(config.seed)
        result = self._train(settings, config, data, work=work, out=staging, console=console)
        manifest = self.register_model(
            settings, profile, config, data, key, result, staging, seconds=time.perf_counter() - started
        )
        shutil.rmtree(work, ignore_errors=True)  # checkpoints are only for resuming an unfinished run
        console.print(f"[green]✓[/green] {name} → {target}")
        return manifest

    def prepare(
        self,
        settings: Settings,
        profile: Profile,
        config: StageConfig | None = None,
        *,
        console: Console | None = None,
    ) -> tuple[StageConfig, TrainingData, str]:
        """The validated config, the (deterministic) training data and the model key of a run."""
        console = console or Console(stderr=True)
        config = config or self.config_class.for_profile(profile)
        if not isinstance(config, self.config_class):
            raise ConfigError(f"stage {self.name!r} needs a {self.config_class.__name__}, got {type(config)}")
        seed_everything(config.seed)
        with console.status(f"{self.name}: preparing training data ({profile})…"):
            data = self._data(settings, config)
        return config, data, run_key(self.name, data.hash, config, self._base_identity(settings, config))

    def register_model(
        self,
        settings: Settings,
        profile: Profile,
        config: StageConfig,
        data: TrainingData,
        key: str,
        result: TrainResult,
        staging: Path,
        *,
        seconds: float,
        trained_on: str | None = None,
    ) -> ModelManifest:
        """Write the manifest into ``staging`` and move it to ``<model_dir>/<stage>-<key>`` (the registry)."""
        name = f"{self.name}-{key}"
        where = f" on {trained_on}" if trained_on else ""
        manifest = ModelManifest(
            name=name,
            role=self.role,
            format=result.format,
            base_model=result.base_model,
            source=f"craft train {self.name} --profile {profile}{where} (from {result.base_source})",
            created=_now(),
            languages=result.languages,
            data_hash=data.hash,
            config={
                "finetune_of": self.name,
                "stage": self.name,
                "profile": profile,
                "key": key,
                "train": json.loads(config.fingerprint()),
                "data": data.summary,
                **result.config,
            },
            metrics={**result.metrics, "total_seconds": round(seconds, 1)},
        )
        write_manifest(staging, manifest)
        target = settings.model_dir / name
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return manifest

    # --- training elsewhere (a GPU machine without the knowledge base): see training/remote.py ----------

    @property
    def supports_remote(self) -> bool:
        """Whether the stage splits its training into a portable ``_fit`` and a local ``_finish``."""
        return type(self)._fit is not Stage._fit

    def _remote_payload(self, data: TrainingData) -> Any:
        """What ``_fit`` reads of ``data.payload`` (pickled into the job: no knowledge-base objects)."""
        return data.payload

    def _fit(
        self,
        settings: Settings,
        config: StageConfig,
        data: TrainingData,
        *,
        work: Path,
        out: Path,
        console: Console,
    ) -> dict[str, Any]:
        """Train into ``out`` without the knowledge base; returns training statistics."""
        raise NotImplementedError(f"stage {self.name!r} cannot train on another machine")

    def _finish(
        self,
        settings: Settings,
        config: StageConfig,
        data: TrainingData,
        *,
        out: Path,
        stats: dict[str, Any],
        console: Console,
    ) -> TrainResult:
        """Validate the model ``_fit`` wrote into ``out`` (here, with the knowledge base) and describe it."""
        raise NotImplementedError(f"stage {self.name!r} cannot train on another machine")

    def _base_identity(self, settings: Settings, config: StageConfig) -> str:
        """What identifies the starting weights (part of the key); stages with a base model override it."""
        return ""

    @abstractmethod
    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        """Build the (deterministic) training and validation data."""

    @abstractmethod
    def _train(
        self,
        settings: Settings,
        config: StageConfig,
        data: TrainingData,
        *,
        work: Path,
        out: Path,
        console: Console,
    ) -> TrainResult:
        """Train into ``out`` (a loadable model folder), checkpointing under ``work``; resume from it."""


STAGES: dict[str, type[Stage]] = {}


S = TypeVar("S", bound=type[Stage])


def register(cls: S) -> S:
    """Class decorator: make a stage known to ``craft train`` and ``make models``."""
    if cls.name in STAGES and STAGES[cls.name] is not cls:
        raise ValueError(f"a stage named {cls.name!r} is already registered ({STAGES[cls.name].__name__})")
    STAGES[cls.name] = cls
    return cls


def get_stage(name: str) -> Stage:
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; known: {', '.join(sorted(STAGES))}")
    return STAGES[name]()
