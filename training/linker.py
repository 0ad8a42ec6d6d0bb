"""Stage ``linker``: contrastive fine-tuning of multilingual-e5-small for occupation/skill linking (EN + DE).

**Pairs.** Every training pair points a concept's surface form at the concept's English preferred label
(the positive): ESCO alternative and hidden labels (EN, DE), the German preferred label, German gender forms,
BA job titles and BA occupation names that map to exactly one ESCO occupation, and optionally the first
sentence of the descriptions. One positive text per concept means ``NO_DUPLICATES`` batching already keeps a
concept to one pair per batch, so the in-batch negatives of ``MultipleNegativesRankingLoss`` are never the
anchor's own concept; German anchors pointing at English labels align the two languages. A hard negative is
the English label of one of the concept's nearest neighbours under the pretrained model (never a concept
the anchor text also names). Both sides carry e5's ``"query: "`` prefix, as the label indexes do.

**Held out.** A seeded share of each concept's labels (alternative labels, BA titles; for skills, whose
German side has only preferred labels, the German preferred label: a cross-lingual query) is held out, with
the gender forms derived from them, and so are the query sets of ``craft bench --suite linking``
(``evaluation.linking.query_sets``). No anchor has the normalized form of any held-out label, and no
concept trains with a held-out label of its own as positive or negative, so neither the validation below
nor the downstream benchmark measures memory. (ESCO reuses names: a held-out alternative label of one
concept can be another concept's English label, which stays that concept's positive.)

**Validation** (dense only, the encoder's own contribution): each held-out label ranks the concepts of an
index made of their *preferred* labels (EN, DE) minus everything held out, so a query can never be an
exact string of the index. Accuracy@1, recall@5 and MRR@10 per query set (occupations EN/DE alt, DE BA
titles, skills EN alt, skills DE preferred), for the pretrained (``_base``) and the fine-tuned model.

**Runtime.** The manifest says ``finetune_of: multilingual-e5-small`` (``settings.linker_model``), so
``find_occupations`` / ``find_skills`` resolve to the newest trained linker; its label indexes are new
collections keyed by the model (``craft index build`` embeds them). Fine-tuning spreads cosines far wider
than e5's, so the manifest carries an equipercentile map of validation cosines (base → tuned) through which
``LinkWeights.for_encoder`` moves the linker's dense floor onto the new scale.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from rich.console import Console

from craft.settings import Settings
from knowledge.models import (
    BASE_MODELS,
    ModelManifest,
    ModelMissing,
    prepared_base,
    resolve,
)
from knowledge.store import KnowledgeBase, get_knowledge
from knowledge.text import normalize
from training.base import (
    Stage,
    StageConfig,
    TrainingData,
    TrainResult,
    accelerator,
    digest,
    last_checkpoint,
    register,
    trainer_arguments,
)

PREFIX = "query: "  # the label indexes embed labels and queries alike with e5's query prefix
KINDS = ("occupation", "skill")
# (kind, lang) → label types a held-out query is drawn from: one validation set each.
HOLDOUT_TYPES: dict[tuple[str, str], tuple[str, ...]] = {
    ("occupation", "en"): ("alt",),
    ("occupation", "de"): ("alt", "ba_title"),
    ("skill", "en"): ("alt",),
    ("skill", "de"): ("pref",),
}
BASE_DENSE_FLOOR = 0.80  # tools.linking.LinkWeights.dense_floor, tuned on the base e5
# Quantile levels of the cosine map: coarse in the bulk, dense in the upper tail where thresholds live.
MAP_LEVELS = np.unique(np.concatenate([np.linspace(0.0, 0.9, 10), 1.0 - np.geomspace(0.1, 1e-4, 16), [1.0]]))


class LinkerConfig(StageConfig):
    """Contrastive linker hyper-parameters; the field defaults are the ``cpu`` profile (the shipped model)."""

    PROFILE_DEFAULTS = {  # noqa: RUF012 - ClassVar declared on StageConfig
        "tiny": {
            "max_concepts": 20,
            "anchors_per_concept": 2,
            "max_pairs": 16,
            "hard_negative_pool": 3,
            "validation_queries": 5,
            "validation_concepts": None,
            "batch_size": 8,
            "save_steps": 1000,  # no checkpoint: writing 470 MB of e5 costs more than its 2 steps
            "learning_rate": 5e-5,
            "max_seq_length": 16,
            "trainable_layers": 2,
            "time_budget_s": 120,
        },
        "cpu": {},
        "full": {
            "max_seq_length": 64,
            "anchors_per_concept": None,
            "max_pairs": None,
            "descriptions": True,
            "hard_negative_pool": 20,
            "validation_queries": 1000,
            "validation_concepts": None,
            "epochs": 3.0,
            "batch_size": 256,
            "learning_rate": 5e-5,
            "bf16": True,
            "save_steps": 500,
            "eval_batch_size": 1024,
            "time_budget_s": None,
        },
    }

    base_model: str = Field(
        "multilingual-e5-small-torch",
        description="Prepared registry model whose weights training starts from.",
    )
    replaces: str = Field(
        "multilingual-e5-small",
        description="Registry name the trained model stands in for (settings.linker_model): its finetune_of.",
    )
    max_seq_length: int = Field(32, ge=8, le=512, description="Tokens per text while training.")
    scale: float = Field(20.0, gt=0, description="MultipleNegativesRankingLoss scale (1 / temperature).")
    freeze_embeddings: bool = Field(
        True,
        description="Keep the 250k-token word embeddings fixed: a 5x smaller optimizer state and no drift of "
        "the vocabulary that EN/DE share with every other language.",
    )
    trainable_layers: int | None = Field(
        None, ge=1, description="Train only the top N transformer layers (faster backward); None = all."
    )
    holdout_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Share of each concept's alt labels / BA titles / DE skill labels held out.",
    )
    bench_queries: int = Field(
        1000, ge=0, description="Also hold out the query sets of `craft bench --suite linking --queries N`."
    )
    max_concepts: int | None = Field(None, ge=2, description="Seeded concept sample per kind; None = all.")
    anchors_per_concept: int | None = Field(
        6, ge=1, description="Seeded anchors kept per concept (some have hundreds); None = all."
    )
    max_pairs: int | None = Field(
        12800, ge=1, description="Training pairs sampled in all (cpu: ~200 steps of 64); None = all."
    )
    occupation_share: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Share of the sampled pairs from occupations (skills outnumber them 4:1).",
    )
    descriptions: bool = Field(False, description="Add (first description sentence → label) pairs.")
    hard_negatives: bool = Field(True, description="Add one mined hard negative per pair.")
    hard_negative_pool: int = Field(10, ge=1, description="Nearest concepts a hard negative is drawn from.")
    validation_queries: int = Field(300, ge=1, description="Held-out labels evaluated per query set.")
    validation_concepts: int | None = Field(
        2000,
        ge=2,
        description="Concepts per kind in the validation index (query concepts always); None = all.",
    )
    eval_batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(3e-5, gt=0)
    batch_size: int = Field(64, ge=2)
    save_steps: int = Field(50, ge=1)
    time_budget_s: float | None = Field(
        1800, gt=0, description="Stop training after this many seconds (cpu: 30 of the 45 minutes)."
    )

    @model_validator(mode="after")
    def _not_its_own_base(self) -> Self:
        if self.replaces == self.base_model:
            raise ValueError(
                f"replaces == base_model ({self.base_model!r}): the linker would also serve everything else "
                "that base serves (the cross-lingual course encoder); replace settings.linker_model instead"
            )
        return self


@dataclass(frozen=True)
class Pair:
    """One (anchor → concept) training example; ``positive`` is the concept's English preferred label."""

    uri: str
    kind: str
    anchor: str
    positive: str
    source: str


@dataclass
class LinkerData:
    """Training pairs, the held-out split and the validation sets of one run (deterministic per config)."""

    pairs: list[Pair]
    held_out: set[tuple[str, str]]
    held_out_norms: set[str]
    bench_keys: set[tuple[str, str]]
    validation: dict[str, list[tuple[str, str]]]
    index: dict[str, list[tuple[str, str]]]
    positives: dict[str, dict[str, str]]
    shared: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # kind → norm → uris, ≥ 2 only

    def summary(self) -> dict[str, Any]:
        by_source: dict[str, int] = defaultdict(int)
        for pair in self.pairs:
            by_source[f"{pair.kind}/{pair.source}"] += 1
        return {
            "pairs": len(self.pairs),
            "pairs_by_source": dict(sorted(by_source.items())),
            "held_out_labels": len(self.held_out),
            "bench_held_out_labels": len(self.bench_keys),
            "validation_queries": {name: len(rows) for name, rows in self.validation.items()},
            "validation_index_labels": {kind: len(rows) for kind, rows in self.index.items()},
            "concepts": {kind: len(self.positives[kind]) for kind in KINDS},
        }


def _fraction(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for ``parts`` (hash-based: no order or sample dependence)."""
    raw = hashlib.sha1(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(raw[:8], "big") / 2**64


def _first_sentence(text: str, limit: int = 300) -> str:
    text = " ".join(str(text or "").split())
    head = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return head[:limit].strip()


def held_out_split(
    labels: pd.DataFrame, fraction: float, seed: int
) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """The held-out label rows (``HOLDOUT_TYPES``, a hashed ``fraction`` of them) and their removal keys."""
    from evaluation.linking import removal_keys

    chosen = []
    for (kind, lang), types in HOLDOUT_TYPES.items():
        rows = labels[(labels.kind == kind) & (labels.lang == lang) & labels.label_type.isin(types)]
        mask = [_fraction(seed, u, n) < fraction for u, n in zip(rows.uri, rows.norm, strict=True)]
        chosen.append(rows[mask])
    held = pd.concat(chosen, ignore_index=True)
    return held, removal_keys(held)


def set_name(kind: str, lang: str, label_type: str) -> str:
    return f"{kind}_{lang}_{label_type}"


def build_linker_data(kb: KnowledgeBase, config: LinkerConfig) -> LinkerData:
    """Pairs, held-out split and validation sets from the snapshot's label table (no model needed)."""
    from evaluation.linking import query_sets, removal_keys

    labels = kb.labels
    held, held_keys = held_out_split(labels, config.holdout_fraction, config.seed)
    bench_keys: set[tuple[str, str]] = set()
    if config.bench_queries:
        bench_keys = set().union(
            *(removal_keys(q) for q in query_sets(labels, config.bench_queries).values())
        )
    excluded = held_keys | bench_keys
    excluded_norms = {norm for _, norm in excluded}
    rng = random.Random(config.seed)

    positives: dict[str, dict[str, str]] = {}
    shared: dict[str, dict[str, set[str]]] = {}
    pools: dict[str, list[Pair]] = {}
    universe: dict[str, list[str]] = {}
    for kind in KINDS:
        rows = labels[labels.kind == kind]
        uris = sorted(rows.uri.unique())
        if config.max_concepts is not None and config.max_concepts < len(uris):
            uris = sorted(rng.sample(uris, config.max_concepts))
        universe[kind] = uris
        keep = set(uris)
        rows = rows[rows.uri.isin(keep)]
        by_norm: dict[str, set[str]] = defaultdict(set)
        for uri, norm in zip(rows.uri, rows.norm, strict=True):
            by_norm[norm].add(uri)
        shared[kind] = {norm: owners for norm, owners in by_norm.items() if len(owners) > 1}
        pref = rows[(rows.lang == "en") & (rows.label_type == "pref")]
        # ESCO reuses names ("manager" is one concept's label, another's alternative): a held-out label of
        # one concept may be another's English label, which stays its positive; a concept whose own English
        # label is held out (a form of a held-out alternative) trains nothing.
        positives[kind] = {
            u: label
            for u, label, n in zip(pref.uri, pref.label, pref.norm, strict=True)
            if (u, n) not in excluded
        }
        concepts = kb.occupations if kind == "occupation" else kb.skills
        anchors: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for uri, label, norm, lang, label_type in zip(
            rows.uri, rows.label, rows.norm, rows.lang, rows.label_type, strict=True
        ):
            if uri not in positives[kind] or norm in excluded_norms:
                continue
            if lang == "en" and label_type == "pref":
                continue
            anchors[uri].append((label, label_type if label_type != "pref" else f"pref_{lang}"))
        if config.descriptions:
            for uri in positives[kind]:
                concept = concepts[uri]
                for lang in ("en", "de"):
                    sentence = _first_sentence(concept.desc_de if lang == "de" else concept.desc_en)
                    if sentence and normalize(sentence) not in excluded_norms:
                        anchors[uri].append((sentence, f"description_{lang}"))
        pool = []
        for uri in sorted(anchors):
            options = sorted(anchors[uri])
            if config.anchors_per_concept is not None and len(options) > config.anchors_per_concept:
                options = random.Random(f"{config.seed}:{uri}").sample(options, config.anchors_per_concept)
            pool += [Pair(uri, kind, text, positives[kind][uri], source) for text, source in options]
        pools[kind] = pool

    pairs = _sample_pairs(pools, config, rng)
    validation, index = _validation_sets(labels, held, excluded, universe, config, rng)
    return LinkerData(
        pairs=pairs,
        held_out=excluded,
        held_out_norms=excluded_norms,
        bench_keys=bench_keys,
        validation=validation,
        index=index,
        positives=positives,
        shared=shared,
    )


def _sample_pairs(pools: dict[str, list[Pair]], config: LinkerConfig, rng: random.Random) -> list[Pair]:
    if config.max_pairs is None:
        return pools["occupation"] + pools["skill"]
    occupations = min(len(pools["occupation"]), round(config.max_pairs * config.occupation_share))
    skills = min(len(pools["skill"]), config.max_pairs - occupations)
    occupations = min(len(pools["occupation"]), config.max_pairs - skills)  # skills short: fill up
    chosen = rng.sample(pools["occupation"], occupations) + rng.sample(pools["skill"], skills)
    rng.shuffle(chosen)
    return chosen


def _validation_sets(
    labels: pd.DataFrame,
    held: pd.DataFrame,
    excluded: set[tuple[str, str]],
    universe: dict[str, list[str]],
    config: LinkerConfig,
    rng: random.Random,
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]]]:
    """Held-out queries per set, and per kind an index of preferred labels without any held-out form."""
    validation: dict[str, list[tuple[str, str]]] = {}
    for (kind, lang), types in HOLDOUT_TYPES.items():
        keep = set(universe[kind])
        for label_type in types:
            rows = held[(held.kind == kind) & (held.lang == lang) & (held.label_type == label_type)]
            rows = rows[rows.uri.isin(keep)]
            queries = sorted(zip(rows.uri, rows.label, strict=True))
            if len(queries) > config.validation_queries:
                queries = sorted(rng.sample(queries, config.validation_queries))
            if queries:
                validation[set_name(kind, lang, label_type)] = queries
    index: dict[str, list[tuple[str, str]]] = {}
    for kind in KINDS:
        queried = sorted({u for name, rows in validation.items() if name.startswith(kind) for u, _ in rows})
        rest = sorted(set(universe[kind]) - set(queried))
        if config.validation_concepts is not None:
            room = max(0, config.validation_concepts - len(queried))
            rest = rng.sample(rest, min(room, len(rest)))
        concepts = set(queried) | set(rest)
        rows = labels[(labels.kind == kind) & (labels.label_type == "pref") & labels.uri.isin(concepts)]
        index[kind] = sorted(
            (u, label)
            for u, label, n in zip(rows.uri, rows.label, rows.norm, strict=True)
            if (u, n) not in excluded
        )
    # A concept whose preferred labels are all held out (forms of its held-out labels) cannot be found.
    findable = {u for rows in index.values() for u, _ in rows}
    validation = {name: [q for q in rows if q[0] in findable] for name, rows in validation.items()}
    return {name: rows for name, rows in validation.items() if rows}, index


def _starting_point(settings: Settings, name: str) -> tuple[Path, ModelManifest]:
    """The weights training starts from. A base model name means the prepared base itself (a fine-tune
    standing in for that name, e.g. another stage's, is not the start); a trained-only name such as
    ``mlm`` (``base_model: mlm`` in a config file) resolves to its newest trained model."""
    folder, manifest = prepared_base(settings, name) if name in BASE_MODELS else resolve(settings, name)
    if manifest.format != "sentence-transformers":
        raise ModelMissing(
            f"base model {name!r} is a {manifest.format!r} model; the linker fine-tunes a "
            "sentence-transformers folder (multilingual-e5-small-torch)"
        )
    return folder, manifest


@register
class LinkerStage(Stage):
    """Occupation/skill linker: multilingual-e5-small fine-tuned on ESCO label and BA title pairs, EN + DE."""

    name = "linker"
    role = "encoder"
    config_class = LinkerConfig
    headline = ("val_mrr@10", "val_mrr@10_base", "val_acc@1")

    def _base_identity(self, settings: Settings, config: StageConfig) -> str:
        assert isinstance(config, LinkerConfig)
        _, manifest = _starting_point(settings, config.base_model)
        return f"{manifest.name}|{manifest.source}"

    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        assert isinstance(config, LinkerConfig)
        kb = get_knowledge(settings)
        data = build_linker_data(kb, config)
        if not data.pairs:
            raise ValueError("no linker training pairs: every concept's labels are held out or sampled away")
        if not data.validation:
            raise ValueError("no held-out validation labels: raise holdout_fraction or max_concepts")
        payload = {
            "snapshot": kb.manifest.version,
            "pairs": [(p.uri, p.anchor, p.positive, p.source) for p in data.pairs],
            "validation": data.validation,
            "index": data.index,
        }
        summary = {"snapshot": kb.manifest.version, **data.summary()}
        return TrainingData(hash=digest(payload), summary=summary, payload=data)

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
        """The fit needs pairs, validation sets and names, not the held-out keys (they shaped the data)."""
        linker: LinkerData = data.payload
        return replace(linker, held_out=set(), held_out_norms=set(), bench_keys=set())

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
        """Mine negatives and validate with the pretrained model, train, validate again, save into ``out``.

        Needs no knowledge base (the validation sets travel in the payload), so it also runs remotely."""
        assert isinstance(config, LinkerConfig)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.base.sampler import BatchSamplers
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        from training.base import time_budget

        linker: LinkerData = data.payload
        folder, _ = _starting_point(settings, config.base_model)
        cuda, bf16 = accelerator(config, console)
        model = SentenceTransformer(
            str(folder),
            device="cuda" if cuda else "cpu",
            local_files_only=True,
            model_kwargs={"dtype": torch.float32},  # a remote job ships the base in float16
        )
        runtime_length = model.max_seq_length
        model.max_seq_length = config.max_seq_length

        # Before training: the pretrained model's validation figures and the hard negatives it mines.
        state = work / "before.json"
        if state.exists():
            before = json.loads(state.read_text())
        else:
            tick = time.perf_counter()
            with console.status(f"{self.name}: encoding with the pretrained model (negatives, validation)…"):
                memo: dict[str, np.ndarray] = {}
                negatives = mine_negatives(model, linker, config, memo) if config.hard_negatives else []
                scores = validation_scores(model, linker, config.eval_batch_size, memo)
            before = {
                "negatives": negatives,
                "metrics": scores.metrics,
                "quantiles": scores.quantiles().tolist(),
                "seconds": round(time.perf_counter() - tick, 1),
            }
            work.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps(before))

        columns: dict[str, list[str]] = {
            "anchor": [PREFIX + p.anchor for p in linker.pairs],
            "positive": [PREFIX + p.positive for p in linker.pairs],
        }
        if config.hard_negatives:
            columns["negative"] = [PREFIX + n for n in before["negatives"]]
        encoder = model[0].auto_model
        if config.freeze_embeddings:
            encoder.get_input_embeddings().weight.requires_grad_(False)
        if config.trainable_layers is not None:
            encoder.embeddings.requires_grad_(False)
            for layer in encoder.encoder.layer[: -config.trainable_layers]:
                layer.requires_grad_(False)
        checkpoints = work / "checkpoints"
        args = SentenceTransformerTrainingArguments(
            **trainer_arguments(config, checkpoints, cuda=cuda, bf16=bf16),
            batch_sampler=BatchSamplers.NO_DUPLICATES,
        )
        budget = time_budget(config.time_budget_s)
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict(columns),
            loss=MultipleNegativesRankingLoss(model, scale=config.scale),
            callbacks=[budget],
        )
        resume = last_checkpoint(checkpoints, console, self.name)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started

        console.print(
            f"{self.name}: validating on {sum(map(len, linker.validation.values()))} held-out labels…"
        )
        tick = time.perf_counter()
        after = validation_scores(model, linker, config.eval_batch_size)
        model.max_seq_length = runtime_length
        model.save_pretrained(str(out))
        metrics: dict[str, Any] = {}
        for key, value in after.metrics.items():
            metrics[key] = value
            metrics[f"{key}_base"] = before["metrics"][key]
        return {
            "metrics": metrics,
            "quantiles": {"base": before["quantiles"], "tuned": after.quantiles().tolist()},
            "max_seq_length": runtime_length,
            "before_seconds": before["seconds"],
            "validation_seconds": round(time.perf_counter() - tick, 1),
            "train_seconds": round(train_seconds, 1),
            "train_steps": int(trainer.state.global_step),
            "max_steps": int(trainer.state.max_steps),
            "train_loss": round(float(output.training_loss), 4),
            "stopped_by_time_budget": budget.stopped,
            "resumed_from": Path(resume).name if resume else None,
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch_threads": torch.get_num_threads(),
            "bf16": bf16,
        }

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
        """Describe the model ``_fit`` wrote (validated there): the cosine map and the moved dense floor."""
        assert isinstance(config, LinkerConfig)
        _upcast(out)  # a remote fit comes back in float16; the CPU runtime encodes in float32
        _, base = _starting_point(settings, config.base_model)
        stats = dict(stats)
        metrics: dict[str, Any] = stats.pop("metrics")
        quantiles = stats.pop("quantiles")
        base_quantiles = _increasing(np.asarray(quantiles["base"]))
        tuned_quantiles = np.asarray(quantiles["tuned"])
        floor = float(np.interp(BASE_DENSE_FLOOR, base_quantiles, tuned_quantiles))
        runtime_length = stats.pop("max_seq_length")
        metrics = {**metrics, "dense_floor": round(floor, 4), **stats}
        console.print(
            f"{self.name}: validation accuracy@1 {metrics['val_acc@1']:.3f} "
            f"(pretrained {metrics['val_acc@1_base']:.3f}), MRR@10 {metrics['val_mrr@10']:.3f} "
            f"({metrics['val_mrr@10_base']:.3f}); dense floor {BASE_DENSE_FLOOR} → {floor:.3f}; "
            f"{stats['train_seconds']:.0f}s training"
        )
        console.print(
            f"{self.name}: now serves {config.replaces!r}; embed its label indexes with `craft index build`"
        )
        return TrainResult(
            format="sentence-transformers",
            base_model=base.name,
            base_source=base.source,
            languages=list(base.languages),
            metrics=metrics,
            config={
                "finetune_of": config.replaces,
                "query_prefix": base.config.get("query_prefix", PREFIX),
                "passage_prefix": base.config.get("passage_prefix", "passage: "),
                "max_seq_length": runtime_length,
                "cosine_map": {
                    "base": [float(v) for v in base_quantiles],
                    "tuned": [float(v) for v in tuned_quantiles],
                    "levels": [round(float(v), 6) for v in MAP_LEVELS],
                    "from": "query-concept cosines of the validation queries, pretrained vs fine-tuned",
                },
            },
        )


def _upcast(folder: Path) -> None:
    """Rewrite float16 safetensors weights as float32 (no-op for a local fit, which saves float32)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    for weights in folder.rglob("*.safetensors"):
        with safe_open(str(weights), framework="pt") as handle:
            names = list(handle.keys())
            half = any(handle.get_slice(name).get_dtype() == "F16" for name in names)
        if half:
            tensors = load_file(str(weights))
            upcast = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
            save_file(upcast, str(weights), metadata={"format": "pt"})


def _increasing(values: np.ndarray) -> np.ndarray:
    """Quantiles made strictly increasing (ties broken by 1e-9 steps) for ``np.interp``."""
    values = np.maximum.accumulate(np.asarray(values, dtype=float))
    return values + np.arange(len(values)) * 1e-9


def encode(
    model: Any, texts: list[str], batch_size: int, memo: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """L2-normalized float32 vectors with the runtime's ``query:`` prefix; ``memo`` (text → vector, one
    model) spares texts already encoded, e.g. English labels both mined and indexed."""
    memo = {} if memo is None else memo
    todo = sorted({t for t in texts if t not in memo})
    if todo:
        vectors = model.encode(
            [PREFIX + t for t in todo],
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=len(todo) > 2000,
        )
        memo.update(zip(todo, np.asarray(vectors, dtype=np.float32), strict=True))
    if not texts:
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return np.zeros((0, dimension() or 384), dtype=np.float32)
    return np.stack([memo[t] for t in texts])


def mine_negatives(
    model: Any, data: LinkerData, config: LinkerConfig, memo: dict[str, np.ndarray] | None = None
) -> list[str]:
    """Per pair, the English label of one of the concept's ``hard_negative_pool`` nearest training concepts
    (by the pretrained model), drawn seeded; never a concept the anchor text also names."""
    rng = random.Random(config.seed)
    neighbours: dict[str, list[str]] = {}
    pool: dict[str, list[str]] = {}
    for kind in KINDS:
        uris = pool[kind] = sorted({p.uri for p in data.pairs if p.kind == kind})
        if len(uris) < 2:
            continue
        vectors = encode(model, [data.positives[kind][u] for u in uris], config.eval_batch_size, memo)
        depth = min(config.hard_negative_pool + 1, len(uris))
        for start in range(0, len(uris), 1024):
            sims = vectors[start : start + 1024] @ vectors.T
            top = np.argpartition(-sims, depth - 1, axis=1)[:, :depth]
            for row, candidates in enumerate(top):
                order = candidates[np.argsort(-sims[row, candidates])]
                neighbours[uris[start + row]] = [uris[c] for c in order if c != start + row]
    negatives = []
    for pair in data.pairs:
        names = data.shared[pair.kind].get(normalize(pair.anchor), set()) | {pair.uri}
        options = [u for u in neighbours.get(pair.uri, [])[: config.hard_negative_pool] if u not in names]
        if not options:  # every neighbour shares the anchor's name: any other training concept
            options = [u for u in pool[pair.kind] if u not in names]
        if not options:
            raise ValueError(f"no negative for {pair.anchor!r}: the {pair.kind}s need two concepts at least")
        negatives.append(data.positives[pair.kind][rng.choice(options)])
    return negatives


@dataclass
class Scores:
    """Validation figures of one model, and the query-concept cosines the cosine map is built from."""

    metrics: dict[str, float]
    cosines: np.ndarray

    def quantiles(self) -> np.ndarray:
        return np.quantile(self.cosines, MAP_LEVELS)


def validation_scores(
    model: Any, data: LinkerData, batch_size: int, memo: dict[str, np.ndarray] | None = None, k: int = 10
) -> Scores:
    """Accuracy@1, recall@5 and MRR@k per validation set: each held-out label ranks the index's concepts by
    the best cosine to one of their (preferred, not held-out) labels."""
    metrics: dict[str, float] = {}
    cosines: list[np.ndarray] = []
    totals: dict[str, list[float]] = defaultdict(list)
    for kind in KINDS:
        sets = {name: rows for name, rows in data.validation.items() if name.startswith(kind)}
        if not sets or not data.index.get(kind):
            continue
        index = data.index[kind]
        concepts = sorted({u for u, _ in index})
        column = {u: i for i, u in enumerate(concepts)}
        order = sorted(range(len(index)), key=lambda i: column[index[i][0]])
        labels = [index[i] for i in order]
        starts = np.flatnonzero(np.r_[True, np.diff([column[u] for u, _ in labels]) != 0])
        vectors = encode(model, [label for _, label in labels], batch_size, memo)
        for name, rows in sets.items():
            queries = encode(model, [label for _, label in rows], batch_size, memo)
            scores = np.maximum.reduceat(queries @ vectors.T, starts, axis=1)
            gold = np.array([column.get(u, -1) for u, _ in rows])
            assert (gold >= 0).all(), f"{name}: a query concept is missing from the validation index"
            target = scores[np.arange(len(rows)), gold]
            ranks = 1 + (scores > target[:, None]).sum(axis=1)
            values = {
                "acc@1": float(np.mean(ranks == 1)),
                "recall@5": float(np.mean(ranks <= 5)),
                f"mrr@{k}": float(np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0))),
            }
            for metric, value in values.items():
                metrics[f"val_{name}_{metric}"] = round(value, 4)
                totals[metric].append(value)
            cosines.append(scores.ravel())
    for metric, values in totals.items():
        metrics[f"val_{metric}"] = round(float(np.mean(values)), 4)
    return Scores(metrics=metrics, cosines=np.concatenate(cosines) if cosines else np.zeros(1))
