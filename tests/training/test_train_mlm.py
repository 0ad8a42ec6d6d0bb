"""The mlm stage end to end on the tiny profile: corpus figures and before/after held-out loss in the
manifest, a model loadable as masked LM, plain encoder and sentence-transformer, registered as ``mlm`` without
replacing e5, a downstream A/B verdict, and reuse on a re-run. The masked-only loss is checked against the
full one."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from craft.settings import Settings
from knowledge.models import ModelManifest, resolve
from training import get_stage
from training.corpus import load_passages
from training.mlm import MLMStage, heldout_loss, masked_lm_loss, preferred_encoder, upcast_float16

E5 = "multilingual-e5-small-torch"


def _quiet() -> Console:
    return Console(file=io.StringIO())


def test_masked_only_loss_equals_the_full_projection_loss() -> None:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    model = BertForMaskedLM(config).eval()
    input_ids = torch.randint(5, 120, (3, 11))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 7:] = 0
    labels = torch.full_like(input_ids, -100)
    labels[0, 2], labels[1, 5], labels[2, 3], labels[2, 4] = 17, 42, 99, 7
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    with torch.no_grad():
        full = model(**batch).loss
        ours = masked_lm_loss(model, batch)
        total, tokens = heldout_loss(model, [batch], torch.device("cpu"))
    assert torch.allclose(full, ours, atol=1e-5)
    assert tokens == 4 and math.isclose(total, float(full), rel_tol=1e-5)


def test_float16_weights_are_stored_as_float32(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    path = tmp_path / "model.safetensors"
    save_file({"w": torch.full((2,), 0.5, dtype=torch.float16), "ids": torch.arange(2)}, str(path))
    upcast_float16(tmp_path)
    tensors = load_file(str(path))
    assert tensors["w"].dtype == torch.float32 and tensors["ids"].dtype == torch.int64
    assert torch.equal(tensors["w"], torch.full((2,), 0.5))


@pytest.fixture(scope="module")
def tiny(
    isolate: Callable[[Path], Settings],
    link_base: Callable[[Settings, str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, ModelManifest, float]:
    settings = isolate(tmp_path_factory.mktemp("mlm"))
    link_base(settings, E5)
    started = time.perf_counter()
    manifest = get_stage("mlm").run(settings, "tiny", console=_quiet())
    return settings, manifest, time.perf_counter() - started


@pytest.mark.data
@pytest.mark.slow
def test_tiny_profile_reports_corpus_and_before_after_loss(
    tiny: tuple[Settings, ModelManifest, float],
) -> None:
    settings, manifest, seconds = tiny
    assert seconds < 600
    assert manifest.name.startswith("mlm-") and (manifest.role, manifest.format) == (
        "encoder",
        "sentence-transformers",
    )
    assert manifest.base_model == E5 and manifest.config["finetune_of"] == "mlm"
    assert manifest.config["query_prefix"] == "query: " and "fitted alone" in manifest.config["mlm_head"]

    corpus = manifest.config["data"]["corpus"]
    by_source = corpus["passages_by_source"]
    assert {"esco:occupation", "esco:skill"} <= set(by_source)
    assert {"de", "en"} <= set(by_source["esco:occupation"]) and any(
        s.startswith("course:") and "de" in langs for s, langs in by_source.items()
    )
    assert corpus["passages"] == sum(sum(v.values()) for v in by_source.values())
    assert (
        corpus["exact_duplicates"] > 0
        and corpus["near_duplicates"] > 0
        and corpus["bench_labels_removed"] > 0
    )
    assert corpus["rejected"]["course:edx"]  # the Spanish/French edX courses are counted, not hidden
    assert (
        manifest.config["data"]["train_passages"] == 32 and manifest.config["data"]["heldout_passages"] == 24
    )

    metrics = manifest.metrics
    before, after = metrics["heldout_mlm_loss_before"], metrics["heldout_mlm_loss_after"]
    assert after > 0 and 0 < before < math.log(250037)  # better than uniform: a random head is not
    assert math.isclose(metrics["heldout_perplexity_before"], math.exp(before), rel_tol=1e-3)
    assert math.isclose(metrics["heldout_perplexity_after"], math.exp(after), rel_tol=1e-3)
    assert metrics["head_warmup_steps"] == 4 and metrics["heldout_masked_tokens"] > 0
    assert metrics["train_steps"] == metrics["max_steps"] == 4 and not metrics["stopped_by_time_budget"]
    assert metrics["trainable_parameters"] < 30_000_000  # word embeddings (and tied decoder) frozen

    ab = manifest.config["downstream_ab"]
    assert ab["verdict"] in {"helps", "hurts", "no significant difference"}
    assert ab["keep"] == (ab["verdict"] == "helps") and ab["queries"] > 0
    assert 0.0 <= ab["mrr_base"] <= 1.0 and 0.0 <= ab["mrr_mlm"] <= 1.0
    assert not (settings.cache_dir / "train" / manifest.name).exists()


@pytest.mark.data
@pytest.mark.slow
def test_heldout_passages_come_from_unseen_document_groups(
    tiny: tuple[Settings, ModelManifest, float],
) -> None:
    settings, manifest, _ = tiny
    key = manifest.config["data"]["corpus"]["key"]
    passages = load_passages(settings.cache_dir / "corpus" / f"corpus-{key}.jsonl")
    train = {p.group for p in passages if p.split == "train"}
    held = {p.group for p in passages if p.split == "heldout"}
    assert held and train and not held & train
    assert len({p.id for p in passages}) == len(passages)


@pytest.mark.data
@pytest.mark.slow
def test_output_loads_as_mlm_encoder_and_sentence_transformer(
    tiny: tuple[Settings, ModelManifest, float],
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    settings, manifest, _ = tiny
    folder, found = resolve(settings, "mlm")
    assert found == manifest and folder == settings.model_dir / manifest.name
    assert resolve(settings, E5)[1].name == E5  # e5 itself is not replaced
    assert preferred_encoder(settings) == ("mlm" if manifest.config["downstream_ab"]["keep"] else E5)

    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder, info = AutoModel.from_pretrained(folder, output_loading_info=True)
    assert type(encoder).__name__ == "BertModel" and not info["missing_keys"]  # pooler shipped too
    mlm, info = AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"]  # the trained head comes back
    batch = tokenizer(["Die Pflegefachkraft betreut <mask> im Krankenhaus."], return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
        logits = mlm(**batch).logits
    assert hidden.shape[-1] == 384 and logits.shape[-1] == mlm.config.vocab_size
    assert torch.allclose(
        mlm.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight
    )

    model = SentenceTransformer(str(folder), device="cpu")
    vectors = model.encode(["query: nurse", "query: Krankenpfleger"], convert_to_numpy=True)
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


@pytest.mark.data
@pytest.mark.slow
def test_remote_payload_is_the_passages_and_pickles(tiny: tuple[Settings, ModelManifest, float]) -> None:
    import pickle

    settings, manifest, _ = tiny
    stage = MLMStage()
    assert stage.supports_remote
    _, data, key = stage.prepare(settings, "tiny", console=_quiet())
    assert f"mlm-{key}" == manifest.name  # the same data and config give the same model key
    payload = pickle.loads(pickle.dumps(stage._remote_payload(data)))
    assert [p.id for p in payload.train] == [p.id for p in data.payload.train]
    assert {p.split for p in payload.train} == {"train"} and {p.split for p in payload.heldout} == {"heldout"}


@pytest.mark.data
@pytest.mark.slow
def test_a_rerun_reuses_the_model(
    tiny: tuple[Settings, ModelManifest, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, manifest, _ = tiny

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished model must not be retrained")

    monkeypatch.setattr(MLMStage, "_train", no_training)
    assert get_stage("mlm").run(settings, "tiny", console=_quiet()) == manifest
