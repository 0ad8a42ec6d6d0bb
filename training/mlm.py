"""Stage ``mlm``: continued masked-LM pretraining of the multilingual encoder on the education corpus.

**Data.** ``training.corpus``: course titles and descriptions of every catalog and ESCO occupation/skill
descriptions and label lists, EN + DE, de-duplicated, with a held-out split by document group (a course, or
an ESCO concept with all its languages), so held-out perplexity is measured on text never trained on.

**Model.** ``multilingual-e5-small-torch`` (a BERT-architecture XLM-R-vocabulary encoder) loaded as
``AutoModelForMaskedLM``. e5 ships no MLM head: the decoder is tied to the word embeddings, but the head's
transform (dense + LayerNorm) and output bias are freshly initialized, so the raw "before" perplexity would
measure a random head (≈ 13.4 nats, worse than uniform), not the encoder. The baseline reported instead: the
output bias starts at the training text's log unigram distribution, the head alone is then fitted on
frozen-encoder features of ``head_warmup_steps`` new training batches, and held-out loss is measured — the
unchanged encoder with the head a short fit gives it. That head is not fully converged (its progressive
loss is in the manifest), so "before" is an upper bound and part of the before → after gain is further head
training. When the base checkpoint ships a head, nothing is fitted and "before" is the checkpoint as is.

**Training.** 15 % of the tokens masked (``DataCollatorForLanguageModeling``: 80 % ``<mask>``, 10 % random,
10 % kept), HF ``Trainer`` with resumable checkpoints and a time box. The 250k-row vocabulary makes the
decoder the costly part on a CPU, so the loss projects only the masked positions onto it (same loss as the
full projection). The ``cpu`` profile freezes the word embeddings (and so the tied decoder): 96M of the
118M parameters, leaving the 21M-parameter transformer to adapt. Held-out masks are drawn once with a fixed
seed, so "before" and "after" score identical masked tokens.

**Output.** A sentence-transformers folder (Transformer → mean pooling → normalize, as e5) whose weights are
a ``BertForMaskedLM`` checkpoint plus e5's pooler: loadable as ``AutoModelForMaskedLM``, ``AutoModel``,
``AutoModelForTokenClassification`` and ``SentenceTransformer``. The manifest says ``finetune_of: mlm``: the
model replaces nothing by itself; stages start from it with ``base_model: mlm`` (or ``preferred_encoder``).

**Downstream A/B.** MLM pretraining can hurt a contrastively trained embedder, so the manifest carries
``downstream_ab``: dense linking (the ``craft bench --suite linking`` protocol — a held-out alternative label
per concept, every label of the same normalized form removed — restricted to concepts of the corpus's
held-out groups, so the MLM model never read them) with the base and the pretrained encoder on the same
queries and candidates, a paired randomization test on reciprocal ranks, and ``keep`` true only when MLM
significantly helps.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from rich.console import Console

from craft.settings import Settings
from knowledge.models import ModelMissing, resolve
from training.base import (
    ConfigError,
    Stage,
    StageConfig,
    TrainingData,
    TrainResult,
    accelerator,
    digest,
    last_checkpoint,
    register,
    time_budget,
    trainer_arguments,
)
from training.corpus import CorpusOptions, CorpusSummary, Passage, build_corpus, heldout_groups

DEFAULT_ENCODER = "multilingual-e5-small-torch"
HEAD_STATE = "head_warmup.pt"
BEFORE = "before.json"


class MLMConfig(StageConfig):
    """Masked-LM hyper-parameters; the field defaults are the ``cpu`` profile (the shipped model)."""

    PROFILE_DEFAULTS = {  # noqa: RUF012 - ClassVar declared on StageConfig
        "tiny": {
            "max_length": 64,
            "train_passages": 32,
            "heldout_passages": 24,
            "batch_size": 8,
            "eval_batch_size": 24,
            "head_warmup_steps": 4,
            "save_steps": 4,
            "ab_queries": 3,
            "ab_distractors": 2,
            "time_budget_s": 120,
        },
        "cpu": {},
        "full": {
            "train_passages": None,
            "heldout_passages": 4000,
            "epochs": 3.0,
            "batch_size": 128,
            "eval_batch_size": 256,
            "learning_rate": 5e-5,
            "lr_scheduler": "linear",
            "freeze_embeddings": False,
            "head_warmup_steps": 400,
            "bf16": True,
            "save_steps": 500,
            "ab_queries": 1000,
            "ab_distractors": 3000,
            "time_budget_s": None,
        },
    }

    base_model: str = Field(DEFAULT_ENCODER, description="Registry name of the encoder to pretrain.")
    max_length: int = Field(128, ge=16, le=512, description="Tokens per passage (longer ones are truncated).")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="Share of tokens masked.")
    passage_words: int = Field(80, ge=8, description="Corpus passage length in words (≈ max_length tokens).")
    heldout_fraction: float = Field(0.05, gt=0, lt=1, description="Share of document groups held out.")
    train_passages: int | None = Field(
        8000, ge=1, description="Training passages sampled from the train split; None = all."
    )
    heldout_passages: int | None = Field(
        600, ge=1, description="Held-out passages scored before and after; None = all."
    )
    learning_rate: float = Field(5e-5, gt=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    lr_scheduler: Literal["constant_with_warmup", "linear", "cosine"] = Field(
        "constant_with_warmup",
        description="constant after warm-up for time-boxed runs (a stop at any step is a finished schedule).",
    )
    freeze_embeddings: bool = Field(
        True, description="Keep the word embeddings (and the tied decoder) fixed: 96M of 118M parameters."
    )
    head_warmup_steps: int = Field(
        100,
        ge=0,
        description="Head-only steps (one new training batch each) before 'before' is measured; the fresh "
        "output bias starts at the corpus's unigram distribution (0 steps: 'before' uses that head).",
    )
    head_learning_rate: float = Field(1e-3, gt=0)
    eval_batch_size: int = Field(32, ge=1)
    ab_queries: int = Field(60, ge=0, description="Linking A/B queries per query set; 0 skips the A/B.")
    ab_distractors: int = Field(
        150, ge=0, description="Occupations added as distractors to the A/B candidates (skills: 4x)."
    )
    ab_alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the A/B verdict.")
    time_budget_s: float | None = Field(
        1680, gt=0, description="Training time box (cpu: 28 min; corpus, evaluations and A/B take the rest)."
    )

    def corpus_options(self, settings: Settings) -> CorpusOptions:
        return CorpusOptions(
            languages=tuple(settings.languages),
            passage_words=self.passage_words,
            heldout_fraction=self.heldout_fraction,
            seed=self.seed,
        )


@dataclass
class MLMData:
    corpus: CorpusSummary
    train: list[Passage]
    heldout: list[Passage]


# ------------------------------------------------------------------------------------------- the stage ---


@register
class MLMStage(Stage):
    """Continued masked-LM pretraining of the multilingual encoder on the education corpus (EN + DE)."""

    name = "mlm"
    role = "encoder"
    config_class = MLMConfig
    headline = ("heldout_perplexity_after", "heldout_perplexity_before")

    def _base_identity(self, settings: Settings, config: StageConfig) -> str:
        assert isinstance(config, MLMConfig)
        _, manifest = resolve(settings, config.base_model)
        return f"{manifest.name}|{manifest.source}|{manifest.created}"

    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        assert isinstance(config, MLMConfig)
        corpus, passages = build_corpus(settings, config.corpus_options(settings))
        train = _sample([p for p in passages if p.split == "train"], config.train_passages, config.seed)
        heldout = _sample([p for p in passages if p.split == "heldout"], config.heldout_passages, config.seed)
        if not train or not heldout:
            raise ValueError(
                f"corpus {corpus.path} has {len(train)} train and {len(heldout)} held-out passages; need both"
            )
        data_hash = digest(
            {"corpus": corpus.hash, "train": [p.id for p in train], "heldout": [p.id for p in heldout]}
        )
        summary = {
            "corpus": {
                "key": corpus.key,
                "hash": corpus.hash,
                "snapshot": corpus.snapshot,
                "passages": corpus.passages,
                "words": corpus.words,
                "passages_by_source": corpus.passages_by_source,
                "split": corpus.split,
                "groups": corpus.groups,
                "exact_duplicates": corpus.exact_duplicates,
                "near_duplicates": corpus.near_duplicates,
                "rejected": corpus.rejected,
                "title_only": corpus.title_only,
                "bench_labels_removed": corpus.bench_labels_removed,
            },
            "train_passages": len(train),
            "heldout_passages": len(heldout),
            "train_by_source": _count(train),
            "heldout_by_source": _count(heldout),
        }
        return TrainingData(hash=data_hash, summary=summary, payload=MLMData(corpus, train, heldout))

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
        stats = self._fit(settings, config, data, work=work, out=out, console=console)
        return self._finish(settings, config, data, out=out, stats=stats, console=console)

    def _remote_payload(self, data: TrainingData) -> Any:
        """The fit needs the passages only; the A/B runs here, where the knowledge base is."""
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
        """Head warm-up, "before", continued pretraining, "after", the model saved into ``out`` (no KB)."""
        assert isinstance(config, MLMConfig)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from datasets import Dataset
        from transformers import (
            AutoModelForMaskedLM,
            AutoTokenizer,
            DataCollatorForLanguageModeling,
            Trainer,
            TrainingArguments,
        )

        payload: MLMData = data.payload
        folder, base = resolve(settings, config.base_model)
        if base.format != "sentence-transformers":
            raise ConfigError(
                f"base_model {config.base_model!r} is a {base.format!r} model; the mlm stage needs a "
                "sentence-transformers folder holding a Hugging Face checkpoint (e.g. "
                f"{DEFAULT_ENCODER})"
            )
        cuda, bf16 = accelerator(config, console)
        device = torch.device("cuda" if cuda else "cpu")

        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        if tokenizer.mask_token is None:
            raise ConfigError(f"the tokenizer of {base.name} has no mask token: it cannot be MLM-pretrained")
        # float32 master weights, also from the float16 copy a remote job ships; the missing head is
        # reported below and e5's unused pooler is not news, so transformers' load report stays quiet
        with quiet_loading():
            model, info = AutoModelForMaskedLM.from_pretrained(
                str(folder), local_files_only=True, output_loading_info=True, dtype=torch.float32
            )
        model.to(device)
        fresh = sorted(k for k in info["missing_keys"] if k.startswith(_head_prefix(model)))

        def tokenize(passages: list[Passage]) -> dict[str, list[Any]]:
            encoded = tokenizer(
                [p.text for p in passages],
                truncation=True,
                max_length=config.max_length,
                return_special_tokens_mask=True,
            )
            columns = {k: list(encoded[k]) for k in ("input_ids", "attention_mask", "special_tokens_mask")}
            columns["length"] = [len(ids) for ids in columns["input_ids"]]
            return columns

        train_columns = tokenize(payload.train)
        heldout_columns = tokenize(payload.heldout)
        multiple = 8 if cuda else None
        eval_batches = _fixed_batches(
            DataCollatorForLanguageModeling(
                tokenizer,
                mlm_probability=config.mlm_probability,
                pad_to_multiple_of=multiple,
                seed=config.seed + 1,
            ),
            heldout_columns,
            config.eval_batch_size,
        )
        autocast = bf16

        # --- the honest "before": the unchanged encoder with a head fitted to it --------------------------
        before_path, head_path = work / BEFORE, work / HEAD_STATE
        if before_path.is_file() and (head_path.is_file() or not fresh):
            before = json.loads(before_path.read_text())
            if head_path.is_file():
                _head(model).load_state_dict(torch.load(head_path, map_location=device), strict=False)
            console.print(
                f"{self.name}: 'before' measured by the interrupted run (loss {before['loss']:.4f})"
            )
        else:
            warmup: dict[str, Any] = {"steps": 0}
            if fresh:
                _unigram_bias(model, train_columns)
            if fresh and config.head_warmup_steps:
                console.print(
                    f"{self.name}: {base.name} ships no MLM head ({len(fresh)} tensors fresh); fitting the "
                    f"head alone for {config.head_warmup_steps} steps before measuring 'before'"
                )
                rows = [
                    i % len(train_columns["input_ids"])
                    for i in range(config.batch_size * config.head_warmup_steps)
                ]
                warmup_batches = _fixed_batches(
                    DataCollatorForLanguageModeling(
                        tokenizer, mlm_probability=config.mlm_probability, seed=config.seed + 2
                    ),
                    {k: [v[i] for i in rows] for k, v in train_columns.items()},
                    config.batch_size,
                    by_length=False,
                )
                warmup = _fit_head(model, warmup_batches, config, device, autocast, console)
            if fresh:  # the head's own tensors (not the tied decoder): what a resumed run starts from
                tied = model.get_output_embeddings().weight.data_ptr()
                state = {k: v for k, v in _head(model).state_dict().items() if v.data_ptr() != tied}
                torch.save(state, head_path)
            loss, tokens = heldout_loss(model, eval_batches, device, autocast)
            before = {"loss": loss, "masked_tokens": tokens, "head_warmup": warmup, "fresh_head": fresh}
            before_path.write_text(json.dumps(before))
            console.print(f"{self.name}: held-out MLM loss before {loss:.4f} (perplexity {_ppl(loss):.1f})")

        # --- continued pretraining -------------------------------------------------------------------------
        if config.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        collator = _DropLength(
            DataCollatorForLanguageModeling(
                tokenizer,
                mlm_probability=config.mlm_probability,
                pad_to_multiple_of=multiple,
                seed=config.seed,
            )
        )
        checkpoints = work / "checkpoints"
        args = TrainingArguments(
            **trainer_arguments(config, checkpoints, cuda=cuda, bf16=bf16),
            lr_scheduler_type=config.lr_scheduler,
            train_sampling_strategy="group_by_length",
            remove_unused_columns=False,
        )
        budget = time_budget(config.time_budget_s)
        trainer = _masked_trainer_class(Trainer)(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict(train_columns),
            data_collator=collator,
            callbacks=[budget],
        )
        resume = last_checkpoint(checkpoints, console, self.name)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started

        after, tokens = heldout_loss(model, eval_batches, device, autocast)
        console.print(
            f"{self.name}: held-out MLM loss {before['loss']:.4f} → {after:.4f} "
            f"(perplexity {_ppl(before['loss']):.1f} → {_ppl(after):.1f}), {train_seconds:.0f}s training"
        )
        _save(model, tokenizer, folder, out)

        metrics: dict[str, Any] = {
            "heldout_mlm_loss_before": round(before["loss"], 4),
            "heldout_mlm_loss_after": round(after, 4),
            "heldout_perplexity_before": round(_ppl(before["loss"]), 2),
            "heldout_perplexity_after": round(_ppl(after), 2),
            "heldout_passages": len(payload.heldout),
            "heldout_masked_tokens": tokens,
            "head_warmup_steps": before["head_warmup"].get("steps", 0),
            "head_warmup_loss_first": before["head_warmup"].get("loss_first"),
            "head_warmup_loss_last": before["head_warmup"].get("loss_last"),
            "train_passages": len(payload.train),
            "train_steps": int(trainer.state.global_step),
            "max_steps": int(trainer.state.max_steps),
            "train_loss": round(float(output.training_loss), 4),
            "trainable_parameters": trainable,
            "train_seconds": round(train_seconds, 1),
            "stopped_by_time_budget": budget.stopped,
            "resumed_from": Path(resume).name if resume else None,
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch_threads": torch.get_num_threads(),
            "bf16": bf16,
        }
        metrics["fresh_head"] = before["fresh_head"]
        return metrics

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
        """The downstream A/B (needs the knowledge base) and the manifest's description of the model."""
        assert isinstance(config, MLMConfig)
        import torch

        folder, base = resolve(settings, config.base_model)
        upcast_float16(out)  # a remote fit ships float16; the registry holds float32 like the base
        metrics = {k: v for k, v in stats.items() if k != "fresh_head"}
        fresh: list[str] = stats.get("fresh_head", [])
        ab: LinkingAB | None = None
        if config.ab_queries:
            console.print(f"{self.name}: downstream A/B (dense linking on held-out concepts)…")
            tick = time.perf_counter()
            held_concepts = heldout_groups(_concept_uris(settings), config.heldout_fraction, config.seed)
            ab = linking_ab(
                settings,
                folder,
                out,
                held_concepts,
                queries_per_set=config.ab_queries,
                distractors=config.ab_distractors,
                prefix=str(base.config.get("query_prefix", "")),
                alpha=config.ab_alpha,
                seed=config.seed,
                device="cuda" if torch.cuda.is_available() else "cpu",
            )
            metrics.update(
                {
                    "ab_linking_mrr@10_base": ab.mrr_base,
                    "ab_linking_mrr@10_mlm": ab.mrr_mlm,
                    "ab_linking_p_value": ab.p_value,
                    "ab_verdict": ab.verdict,
                    "ab_seconds": round(time.perf_counter() - tick, 1),
                }
            )
            console.print(
                f"{self.name}: linking MRR@10 base {ab.mrr_base:.3f} vs mlm {ab.mrr_mlm:.3f} "
                f"(p = {ab.p_value:.3g}): {ab.verdict}"
            )
        head = (
            f"fresh ({len(fresh)} tensors): output bias set to the training text's log unigram distribution, "
            f"then fitted alone for {metrics['head_warmup_steps']} steps on frozen-encoder features before "
            "'before' was measured (an upper bound for the unchanged encoder; see head_warmup_loss_*)"
            if fresh
            else "shipped with the base checkpoint"
        )
        return TrainResult(
            format="sentence-transformers",
            base_model=base.name,
            base_source=base.source,
            languages=list(base.languages),
            metrics=metrics,
            config={
                **{
                    k: base.config[k]
                    for k in ("query_prefix", "passage_prefix", "max_seq_length")
                    if k in base.config
                },
                "mlm_head": head,
                "loadable_as": ["AutoModelForMaskedLM", "AutoModel", "SentenceTransformer"],
                "downstream_ab": ab.model_dump() if ab else {"verdict": "not run", "keep": False},
            },
        )


# ------------------------------------------------------------------------------------------- helpers ---


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' load reports (unused or fresh tensors we account for ourselves)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _sample(passages: list[Passage], n: int | None, seed: int) -> list[Passage]:
    """A seeded sample in corpus order (the whole list when ``n`` is None or larger)."""
    if n is None or n >= len(passages):
        return passages
    chosen = sorted(random.Random(seed).sample(range(len(passages)), n))
    return [passages[i] for i in chosen]


def _count(passages: list[Passage]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in passages:
        key = f"{p.source}/{p.lang}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _ppl(loss: float) -> float:
    return math.exp(min(loss, 50.0))


def _concept_uris(settings: Settings) -> list[str]:
    from knowledge.store import get_knowledge

    kb = get_knowledge(settings)
    return sorted(kb.occupations) + sorted(kb.skills)


def _head_prefix(model: Any) -> str:
    return "cls." if hasattr(model, "cls") else "lm_head."


def _head(model: Any) -> Any:
    """The MLM head module (BERT ``cls``, RoBERTa/XLM-R ``lm_head``)."""
    head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
    if head is None:
        raise ConfigError(f"{type(model).__name__} has no known MLM head (cls / lm_head)")
    return head


def masked_lm_loss(model: Any, batch: dict[str, Any], reduction: str = "mean") -> Any:
    """Cross-entropy on the masked positions only: the vocabulary projection is applied to those alone."""
    import torch.nn.functional as F

    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    labels = batch["labels"]
    selected = labels != -100
    logits = _head(model)(hidden[selected])
    return F.cross_entropy(logits.float(), labels[selected], reduction=reduction)


def heldout_loss(
    model: Any, batches: list[dict[str, Any]], device: Any, bf16: bool = False
) -> tuple[float, int]:
    """Mean cross-entropy per masked token over fixed (pre-masked) batches, and the masked-token count."""
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for batch in batches:
            moved = {k: v.to(device) for k, v in batch.items()}
            total += float(masked_lm_loss(model, moved, reduction="sum"))
            tokens += int((moved["labels"] != -100).sum())
    model.train()
    if not tokens:
        raise ValueError("the held-out batches hold no masked token")
    return total / tokens, tokens


def _fixed_batches(
    collator: Any, columns: dict[str, list[Any]], batch_size: int, *, by_length: bool = True
) -> list[dict[str, Any]]:
    """Collate (and so mask) once: the same masked tokens are scored before and after training."""
    n = len(columns["input_ids"])
    order = sorted(range(n), key=lambda i: columns["length"][i]) if by_length else list(range(n))
    keys = ("input_ids", "attention_mask", "special_tokens_mask")
    batches = []
    for start in range(0, n, batch_size):
        rows = [{k: columns[k][i] for k in keys} for i in order[start : start + batch_size]]
        batch = collator(rows)
        batches.append({k: batch[k] for k in ("input_ids", "attention_mask", "labels")})
    return batches


def _unigram_bias(model: Any, columns: dict[str, list[Any]], smoothing: float = 0.1) -> None:
    """Start a fresh output bias at the training text's log unigram distribution (the best context-free
    guess), so the short head fit spends its steps on the transform, not on learning token frequencies."""
    import torch

    vocab = model.config.vocab_size
    counts = np.zeros(vocab, dtype=np.float64)
    for ids, special in zip(columns["input_ids"], columns["special_tokens_mask"], strict=True):
        tokens = np.asarray(ids)[np.asarray(special) == 0]
        counts += np.bincount(tokens, minlength=vocab)[:vocab]
    log_p = np.log((counts + smoothing) / (counts.sum() + smoothing * vocab))
    with torch.no_grad():
        model.get_output_embeddings().bias.copy_(torch.as_tensor(log_p, dtype=torch.float32))


def _fit_head(
    model: Any, batches: list[dict[str, Any]], config: MLMConfig, device: Any, bf16: bool, console: Console
) -> dict[str, Any]:
    """Train the head's own parameters (not the tied decoder) on frozen-encoder features, one pass.

    Every batch is new to the head when it is scored, so the pre-update losses are a progressive validation
    curve: ``loss_first`` / ``loss_last`` (means over the first / last tenth) show how far the fit got.
    """
    import torch
    import torch.nn.functional as F

    head = _head(model)
    tied = model.get_output_embeddings().weight
    params = [p for p in head.parameters() if p is not tied]
    frozen = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=config.head_learning_rate, weight_decay=0.0)
    losses = []
    model.eval()  # no dropout: the encoder is a fixed feature extractor here
    for batch in batches:
        moved = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            hidden = model.base_model(input_ids=moved["input_ids"], attention_mask=moved["attention_mask"])[0]
        selected = moved["labels"] != -100
        loss = F.cross_entropy(head(hidden[selected].float()).float(), moved["labels"][selected])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.train()
    for p, flag in frozen.items():
        p.requires_grad_(flag)
    tenth = max(1, len(losses) // 10)
    first, last = float(np.mean(losses[:tenth])), float(np.mean(losses[-tenth:]))
    console.print(f"head warm-up: loss {first:.3f} → {last:.3f} over {len(losses)} steps")
    return {"steps": len(losses), "loss_first": round(first, 4), "loss_last": round(last, 4)}


class _DropLength:
    """The MLM collator without the ``length`` column (it only serves the length-grouped sampler)."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return self.collator([{k: v for k, v in row.items() if k != "length"} for row in rows])


def _masked_trainer_class(trainer: type) -> type:
    class MaskedLMTrainer(trainer):  # type: ignore[misc, valid-type]
        """``Trainer`` whose loss projects only the masked positions onto the vocabulary."""

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            loss = masked_lm_loss(model, inputs)
            return (loss, None) if return_outputs else loss

    return MaskedLMTrainer


def _save(model: Any, tokenizer: Any, base_folder: Path, out: Path) -> None:
    """Sentence-transformers layout of the base, the MLM checkpoint, the tokenizer, and the base's pooler."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    modules = base_folder / "modules.json"
    if not modules.is_file():
        raise ConfigError(f"{base_folder} is not a sentence-transformers folder (no modules.json)")
    for name in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
        if (base_folder / name).is_file():
            shutil.copy2(base_folder / name, out / name)
    for module in json.loads(modules.read_text()):
        if module.get("path"):
            shutil.copytree(base_folder / module["path"], out / module["path"], dirs_exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    weights, base_weights = out / "model.safetensors", base_folder / "model.safetensors"
    if not weights.is_file():
        raise RuntimeError(f"{out}: expected a single model.safetensors (is the model sharded?)")
    if base_weights.is_file():
        with safe_open(str(base_weights), "pt") as handle:
            names = handle.keys()
            pooler = {
                f"{model.base_model_prefix}.{k}": handle.get_tensor(k)
                for k in names
                if k.startswith("pooler.")
            }
        if pooler:  # AutoModel / SentenceTransformer then load a complete encoder, nothing newly initialized
            state = load_file(str(weights))
            state.update(pooler)
            save_file(state, str(weights), metadata={"format": "pt"})


def upcast_float16(folder: Path) -> None:
    """Rewrite float16 safetensors weights as float32 (CPU inference and later fine-tuning want float32)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    for weights in folder.rglob("*.safetensors"):
        with safe_open(str(weights), "pt") as handle:  # reads the header only
            names = handle.keys()
            half = any(handle.get_slice(k).get_dtype() == "F16" for k in names)
        if half:
            tensors = load_file(str(weights))
            tensors = {k: t.float() if t.dtype == torch.float16 else t for k, t in tensors.items()}
            save_file(tensors, str(weights), metadata={"format": "pt"})


def preferred_encoder(settings: Settings, base: str = DEFAULT_ENCODER) -> str:
    """``"mlm"`` when a trained MLM encoder exists and its downstream A/B says keep it, else ``base``."""
    try:
        _, manifest = resolve(settings, "mlm")
    except ModelMissing:
        return base
    if manifest.base_model != base:
        return base
    return "mlm" if manifest.config.get("downstream_ab", {}).get("keep") else base


# ------------------------------------------------------------------------------------ downstream A/B ---


class ABSet(BaseModel):
    queries: int
    mrr_base: float
    mrr_mlm: float
    acc1_base: float
    acc1_mlm: float


class LinkingAB(BaseModel):
    """Dense linking of held-out concepts' labels with the base vs the MLM-pretrained encoder."""

    protocol: str
    queries: int
    candidates: dict[str, dict[str, int]] = Field(description="kind -> concepts / labels ranked.")
    sets: dict[str, ABSet]
    mrr_base: float
    mrr_mlm: float
    acc1_base: float
    acc1_mlm: float
    mean_diff: float = Field(description="MRR@10 of mlm minus base, per query.")
    p_value: float
    alpha: float
    verdict: Literal["helps", "hurts", "no significant difference"]
    keep: bool = Field(description="Use the MLM encoder downstream: only when it significantly helps.")


def linking_ab(
    settings: Settings,
    base_folder: Path,
    mlm_folder: Path,
    concepts: set[str],
    *,
    queries_per_set: int,
    distractors: int,
    prefix: str = "query: ",
    alpha: float = 0.05,
    seed: int = 42,
    device: str = "cpu",
) -> LinkingAB:
    """The linking benchmark's protocol, dense only, with the queries drawn from ``concepts`` (held out).

    Per query set one alternative label of a sampled held-out concept is the query; every label of that
    concept with the same normalized form (and derived gender forms) leaves the candidates. Candidates: the
    labels of the query concepts plus a seeded sample of distractor concepts, the label types the production
    dense index embeds. A query's rank is its concept's rank by best label cosine. Lexical signals are the
    same for both encoders, so only the dense part is compared.
    """
    from evaluation.linking import _holdout, _without, removal_keys
    from evaluation.stats import paired_randomization_test
    from knowledge.indexes import indexed_labels
    from knowledge.store import get_knowledge
    from knowledge.vectors import sample_uris

    kb = get_knowledge(settings)
    labels = kb.labels
    held = labels[labels.uri.isin(concepts)]
    specs = {
        "occupations EN (alt labels)": ("occupation", "en", "alt"),
        "occupations DE (alt labels)": ("occupation", "de", "alt"),
        "occupations DE (BA titles)": ("occupation", "de", "ba_title"),
        "skills EN (alt labels)": ("skill", "en", "alt"),
    }
    sets = {
        name: _holdout(held, kind, lang, label_type, queries_per_set, seed + i)
        for i, (name, (kind, lang, label_type)) in enumerate(specs.items())
    }
    sets = {name: q for name, q in sets.items() if len(q)}
    if not sets:
        raise ValueError(f"no linking query among the {len(concepts)} held-out concepts")
    reduced = _without(labels, set().union(*(removal_keys(q) for q in sets.values())))
    candidates: dict[str, Any] = {}
    for kind in ("occupation", "skill"):
        rows = reduced[reduced.kind == kind]
        wanted = {u for name, q in sets.items() if specs[name][0] == kind for u in q.uri}
        n = distractors if kind == "occupation" else distractors * 4
        wanted |= sample_uris(sorted(rows.uri.unique()), n, seed)
        chosen = indexed_labels(rows[rows.uri.isin(wanted)], kind, None, settings.skill_index_label_types)
        candidates[kind] = chosen.sort_values(["uri", "label_id"]).reset_index(drop=True)

    texts = sorted(
        {t for c in candidates.values() for t in c.label} | {t for q in sets.values() for t in q.label}
    )
    rr: dict[str, dict[str, list[float]]] = {}
    hit: dict[str, dict[str, list[float]]] = {}
    for arm, folder in (("base", base_folder), ("mlm", mlm_folder)):
        vectors = dict(zip(texts, _embed(folder, [prefix + t for t in texts], device), strict=True))
        for name, queries in sets.items():
            frame = candidates[specs[name][0]]
            queries = queries[queries.uri.isin(set(frame.uri))]  # a concept whose labels all left: no query
            matrix = np.stack([vectors[t] for t in frame.label])
            uris, starts = np.unique(frame.uri.to_numpy(), return_index=True)
            scores = np.stack([vectors[t] for t in queries.label]) @ matrix.T
            best = np.maximum.reduceat(scores, starts, axis=1)  # (queries, concepts)
            truth = np.searchsorted(uris, queries.uri.to_numpy())
            true_score = best[np.arange(len(truth)), truth]
            ranks = 1 + (best > true_score[:, None]).sum(axis=1)
            rr.setdefault(name, {})[arm] = [1.0 / r if r <= 10 else 0.0 for r in ranks]
            hit.setdefault(name, {})[arm] = [float(r == 1) for r in ranks]

    all_base = [v for s in rr.values() for v in s["base"]]
    all_mlm = [v for s in rr.values() for v in s["mlm"]]
    test = paired_randomization_test(all_mlm, all_base, seed=seed)
    significant = test.p_value < alpha
    verdict: Literal["helps", "hurts", "no significant difference"] = (
        "no significant difference"
        if not significant or test.mean_diff == 0
        else ("helps" if test.mean_diff > 0 else "hurts")
    )
    r4 = lambda values: round(float(np.mean(values)), 4)  # noqa: E731
    return LinkingAB(
        protocol=(
            "dense linking, craft bench --suite linking protocol (held-out label per concept, same-form "
            "labels removed) on concepts of the corpus's held-out groups; concept rank by best label cosine "
            f"among query concepts + {distractors} occupation / {distractors * 4} skill distractors; "
            "paired randomization test on per-query RR@10"
        ),
        queries=len(all_base),
        candidates={
            kind: {"concepts": int(frame.uri.nunique()), "labels": len(frame)}
            for kind, frame in candidates.items()
        },
        sets={
            name: ABSet(
                queries=len(rr[name]["base"]),
                mrr_base=r4(rr[name]["base"]),
                mrr_mlm=r4(rr[name]["mlm"]),
                acc1_base=r4(hit[name]["base"]),
                acc1_mlm=r4(hit[name]["mlm"]),
            )
            for name in rr
        },
        mrr_base=r4(all_base),
        mrr_mlm=r4(all_mlm),
        acc1_base=r4([v for s in hit.values() for v in s["base"]]),
        acc1_mlm=r4([v for s in hit.values() for v in s["mlm"]]),
        mean_diff=round(test.mean_diff, 4),
        p_value=round(test.p_value, 4),
        alpha=alpha,
        verdict=verdict,
        keep=verdict == "helps",
    )


def _embed(folder: Path, texts: list[str], device: str) -> np.ndarray:
    import torch
    from sentence_transformers import SentenceTransformer

    with quiet_loading():  # AutoModel skips the MLM head of the checkpoint: expected, not news
        model = SentenceTransformer(
            str(folder), device=device, local_files_only=True, model_kwargs={"dtype": torch.float32}
        )
    vectors = model.encode(texts, batch_size=128, convert_to_numpy=True, normalize_embeddings=True)
    del model
    return np.asarray(vectors, dtype=np.float32)
