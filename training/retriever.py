"""Stage ``retriever``: the course bi-encoder, fine-tuned contrastively on silver occupation → course pairs.

What the product's dense retrieval does at run time is what this stage trains and validates, text for text:

* **queries** are ``build_query(kb, occupation)`` seen through the two views of ``tools.retrieval.dense``
  (``profile``: occupation + missing skills; ``occupation``: label + description), each behind a short
  **query instruction**; a train occupation's positives alternate between the views. The instruction is
  saved in the model (sentence-transformers ``prompts``: ``encode(text, prompt_name="query")``) and in the
  manifest (``query_prefix``), which is what the runtime encoder (``SentenceTransformerEncoder``) prepends.
* **courses** are ``CourseCorpus.texts``, the texts the dense index embeds.
* **loss**: ``MultipleNegativesRankingLoss`` (InfoNCE) with scale ``1 / temperature`` (0.02 → 50): every other
  course of the batch is a negative, plus one mined **hard negative** per row, drawn alternately from BM25's
  and the pretrained encoder's top ``hard_depth`` (the product's two-view dense retrieval), never a course
  silver judges relevant. In-batch courses that silver judges relevant to an anchor's occupation are masked
  out of its softmax (``false_negative_mask``; silver is broad: ~5 % of in-batch pairs, reported as
  ``masked_in_batch_share``): at temperature 0.02 a single false negative would dominate the loss.
* **early stopping** on validation nDCG@10: every ``eval_steps`` the model being trained ranks a sampled
  validation catalog (the eval occupations' relevant courses, BM25 candidates and random ones) exactly like
  ``DenseRetriever`` does; the best checkpoint is kept. The manifest then reports nDCG@10 on the whole
  indexed catalog for the pretrained encoder as served (``val_ndcg@10_pretrained``) and for the trained one
  (``val_ndcg@10``), both through the runtime retrieval code.

Occupations come from ``training.pairs.build_pairs``: train side only (gold pinned to test), positives and
BM25 negatives from there; validation occupations from the validation side.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator
from rich.console import Console
from tqdm.auto import tqdm

from craft.settings import Settings
from knowledge.encoders import Encoder, VectorCache
from knowledge.models import ModelManifest, resolve
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
from training.pairs import Leakage, PairSampling, PairSet, _subset, build_pairs, sample

if TYPE_CHECKING:
    from evaluation.qrels import Qrels
    from knowledge.store import KnowledgeBase
    from tools.retrieval.base import RetrievalQuery
    from tools.retrieval.corpus import CourseCorpus
    from tools.retrieval.dense import DenseRetriever, View

K = 10
FORMAT = "sentence-transformers"
QUERY_INSTRUCTION = "Find courses that teach the skills for this occupation: "


class RetrieverConfig(PairSampling):
    """Bi-encoder hyper-parameters; the field defaults are the ``cpu`` profile (the shipped model)."""

    PROFILE_DEFAULTS = {  # noqa: RUF012 - ClassVar declared on StageConfig
        "tiny": {
            "train_queries": 4,
            "hard_depth": 10,
            "validation_queries": 3,
            "validation_depth": 5,
            "eval_corpus": 60,
            "batch_size": 4,
            "eval_steps": 1,
            "save_steps": 1,
            "patience": 1,
            "max_seq_length": 32,
            "serve_max_seq_length": 32,
            "eval_batch_size": 32,
            "time_budget_s": 120,
        },
        "cpu": {},
        "full": {
            "train_queries": None,
            "positives": 8,
            "hard_negatives": 4,
            "dense_negatives": 4,
            "hard_depth": 100,
            "validation_queries": None,
            "validation_depth": 50,
            "eval_queries": None,
            "eval_corpus": None,
            "epochs": 5.0,
            "batch_size": 128,
            "learning_rate": 5e-5,
            "bf16": True,
            "eval_steps": 50,
            "save_steps": 50,
            "patience": 4,
            "max_seq_length": 256,
            "eval_batch_size": 256,
            "time_budget_s": None,
        },
    }

    base_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Registry name of the starting encoder (sentence-transformers format).",
    )
    query_instruction: str = Field(
        QUERY_INSTRUCTION,
        description="Put before every query view (after the base model's own query prefix).",
    )
    temperature: float = Field(0.02, gt=0, le=1, description="InfoNCE temperature; the loss scale is 1/T.")
    train_queries: int | None = Field(None, ge=1, description="Train occupations sampled; None = all.")
    hard_negatives: int = Field(1, ge=0, description="BM25 hard negatives per train occupation.")
    dense_negatives: int = Field(
        1, ge=0, description="Hard negatives per train occupation from the pretrained encoder's top ranks."
    )
    random_negatives: int = Field(0, ge=0, description="Unused: in-batch negatives are the random ones.")
    first_stage: Literal["bm25", "dense"] = Field(
        "bm25", description="Where build_pairs' hard negatives come from; the dense ones are mined here."
    )
    validation_depth: int = Field(
        20, ge=1, description="BM25 candidates per eval occupation added to the early-stopping catalog."
    )
    max_seq_length: int = Field(128, ge=16, le=512, description="Tokens per query or course in training.")
    serve_max_seq_length: int | None = Field(
        None,
        ge=16,
        le=512,
        description="Tokens per text in validation and at run time (saved in the model); None = the base "
        "model's (MiniLM: 256), so the profile view keeps its skills.",
    )
    eval_queries: int | None = Field(
        50, ge=1, description="Validation occupations of the early-stopping evaluation; None = all."
    )
    eval_corpus: int | None = Field(
        1500, ge=1, description="Courses ranked in the early-stopping evaluation; None = the indexed catalog."
    )
    eval_steps: int = Field(30, ge=1, description="Evaluate (and checkpoint) every N optimizer steps.")
    save_steps: int = Field(30, ge=1, description="Checkpoint every N steps; a multiple of eval_steps.")
    patience: int = Field(2, ge=1, description="Stop after N evaluations without a better nDCG@10.")
    batch_size: int = Field(
        32, ge=2, description="Rows per batch: each row's courses are the others' negatives."
    )
    learning_rate: float = Field(3e-5, gt=0)
    eval_batch_size: int = Field(64, ge=1)
    time_budget_s: float | None = Field(
        1500,
        gt=0,
        description="Stop training (evaluations included) after this many seconds; cpu: 25 min, leaving the "
        "45 for mining hard negatives before and validating on the whole catalog after.",
    )

    @model_validator(mode="after")
    def _checkpoint_on_evaluations(self) -> RetrieverConfig:
        if self.save_steps % self.eval_steps:
            raise ValueError(
                f"save_steps ({self.save_steps}) must be a multiple of eval_steps ({self.eval_steps}): the "
                "best checkpoint is chosen among the evaluated ones"
            )
        if self.hard_negatives + self.dense_negatives == 0:
            raise ValueError("hard_negatives + dense_negatives must be ≥ 1 (one hard negative per row)")
        return self


@dataclass(frozen=True)
class Row:
    """One training example: a query view, a relevant course and a hard negative (ids and exact texts)."""

    occupation_uri: str
    view: View
    positive_id: str
    negative_id: str
    negative_source: str
    anchor: str
    positive: str
    negative: str


@dataclass
class RetrieverData:
    rows: list[Row]
    relevant: dict[str, set[str]]
    pairs: PairSet
    validation_occupations: list[str]
    eval_occupations: list[str]
    eval_corpus: set[str] | None
    query_prefix: str
    passage_prefix: str
    counts: dict[str, Any] = field(default_factory=dict)


def prefixes(base: ModelManifest, instruction: str) -> tuple[str, str]:
    """(query, passage) prefixes: the base model's own (e5 ``query: ``, ``passage: ``) + the instruction."""
    return str(base.config.get("query_prefix", "")) + instruction, str(base.config.get("passage_prefix", ""))


def false_negative_mask(
    batch: Sequence[int],
    keys: Sequence[tuple[str, tuple[str, ...]]],
    relevant: Mapping[str, set[str]],
) -> np.ndarray:
    """Which (anchor, in-batch course) scores to drop from the softmax: courses relevant to the anchor's
    occupation other than its own positive.

    ``batch`` are row indices, ``keys[row]`` = (occupation, (positive id, negative id, …)). Columns follow the
    loss's layout: every row's positive, then every row's first negative, and so on; column ``i`` (anchor
    ``i``'s own positive) is never masked.
    """
    size = len(batch)
    columns = [keys[row][1][column] for column in range(len(keys[batch[0]][1])) for row in batch]
    mask = np.zeros((size, len(columns)), dtype=bool)
    for i, row in enumerate(batch):
        own = relevant.get(keys[row][0], set())
        mask[i] = [course in own for course in columns]
        mask[i, i] = False
    return mask


@register
class RetrieverStage(Stage):
    """Course retriever: MiniLM bi-encoder fine-tuned with in-batch + hard negatives (two-view queries)."""

    name = "retriever"  # tools.retrieval.registry.RETRIEVER: what the runtime resolves
    role = "encoder"
    config_class = RetrieverConfig
    headline = ("val_ndcg@10", "val_ndcg@10_pretrained")

    def _base_identity(self, settings: Settings, config: StageConfig) -> str:
        assert isinstance(config, RetrieverConfig)
        _, manifest = resolve(settings, config.base_model)
        return f"{manifest.name}|{manifest.source}"

    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        assert isinstance(config, RetrieverConfig)
        from evaluation.harness import resolve_ground_truth
        from knowledge.course_skills import load_course_skills
        from knowledge.store import get_knowledge
        from tools.retrieval.corpus import CourseCorpus
        from tools.retrieval.dense import VIEWS, view_text
        from tools.retrieval.query import build_query
        from tools.retrieval.registry import dense_retriever, indexed_courses

        _, base = resolve(settings, config.base_model)
        if base.format != FORMAT:
            raise ConfigError(
                f"base model {base.name!r} has format {base.format!r}; the retriever fine-tunes a {FORMAT} "
                "encoder (all-MiniLM-L6-v2, multilingual-e5-small-torch)"
            )
        query_prefix, passage_prefix = prefixes(base, config.query_instruction)
        kb = get_knowledge(settings)
        pairs = build_pairs(settings, config, kb=kb)
        silver, _, _ = resolve_ground_truth(settings, kb, "silver", load_course_skills(settings))
        corpus = CourseCorpus.from_knowledge(kb)
        # the pretrained encoder as the product serves it: its top ranks are the dense hard negatives
        pretrained = dense_retriever(
            settings, corpus, config.base_model, exact=True, progress=f"courses ({config.base_model})"
        )

        def text(course_id: str) -> str:
            return corpus.texts[corpus.position[course_id]]

        by_occupation: dict[str, dict[str, list[str]]] = {}
        for pair in pairs.train:
            by_occupation.setdefault(pair.occupation_uri, {}).setdefault(pair.kind, []).append(pair.course_id)
        queries = {occ: build_query(kb, occ) for occ in by_occupation}
        if config.dense_negatives:
            pretrained.prime(list(queries.values()))  # every query view in large batches, once
        rows: list[Row] = []
        relevant: dict[str, set[str]] = {}
        skipped = 0
        for occ, kinds in tqdm(by_occupation.items(), desc="dense negatives", unit="occ"):
            query = queries[occ]
            own = set(silver.relevant(occ))
            positives = kinds.get("positive", [])
            bm25 = kinds.get("hard", [])
            dense: list[str] = []
            if config.dense_negatives:
                taken = own | set(positives) | set(bm25)
                hits = [h.course_id for h in pretrained.retrieve(query, config.hard_depth)]
                dense = sample([c for c in hits if c not in taken], config.dense_negatives, _rng(config, occ))
            negatives = _interleave([(c, "bm25") for c in bm25], [(c, "dense") for c in dense])
            if not positives or not negatives:
                skipped += 1
                continue
            relevant[occ] = own
            for i, positive in enumerate(positives):
                view = VIEWS[i % len(VIEWS)]
                negative, source = negatives[i % len(negatives)]
                rows.append(
                    Row(
                        occ,
                        view,
                        positive,
                        negative,
                        source,
                        query_prefix + view_text(query, view),
                        passage_prefix + text(positive),
                        passage_prefix + text(negative),
                    )
                )
        if not rows:
            raise ValueError(
                "no training rows: no train occupation has both a relevant course and a negative"
            )

        validation = sorted(pairs.validation_qrels.queries())
        eval_occupations = _subset(validation, config.eval_queries, config.seed)
        eval_corpus = _eval_corpus(corpus, pairs, eval_occupations, indexed_courses(settings, corpus), config)
        check_rows(rows, validation, pairs)
        counts = {
            "train_rows": len(rows),
            "train_rows_occupations": len(relevant),
            "negatives_by_source": {s: sum(r.negative_source == s for r in rows) for s in ("bm25", "dense")},
            "skipped_without_negative": skipped,
            "rows_per_view": {v: sum(r.view == v for r in rows) for v in VIEWS},
            "validation_occupations_full": len(validation),
            "eval_occupations": len(eval_occupations),
            "eval_corpus": len(eval_corpus) if eval_corpus is not None else None,
        }
        payload = RetrieverData(
            rows=rows,
            relevant=relevant,
            pairs=pairs,
            validation_occupations=validation,
            eval_occupations=eval_occupations,
            eval_corpus=eval_corpus,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
            counts=counts,
        )
        data_hash = digest(
            {
                "pairs": pairs.hash,
                "rows": [
                    (
                        r.occupation_uri,
                        r.view,
                        r.positive_id,
                        r.negative_id,
                        hashlib.sha1(f"{r.anchor}\x1f{r.positive}\x1f{r.negative}".encode()).hexdigest(),
                    )
                    for r in rows
                ],
                "eval_occupations": eval_occupations,
                "eval_corpus": sorted(eval_corpus) if eval_corpus is not None else None,
            }
        )
        return TrainingData(hash=data_hash, summary={**pairs.summary(), **counts}, payload=payload)

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
        assert isinstance(config, RetrieverConfig)
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
        from transformers import EarlyStoppingCallback

        from knowledge.store import get_knowledge
        from tools.retrieval.corpus import CourseCorpus
        from tools.retrieval.dense import VIEWS
        from tools.retrieval.query import build_query

        payload: RetrieverData = data.payload
        folder, base = resolve(settings, config.base_model)
        cuda, bf16 = accelerator(config, console)
        model = SentenceTransformer(str(folder), device="cuda" if cuda else "cpu", local_files_only=True)
        serve_length = config.serve_max_seq_length or int(model.max_seq_length or 256)
        model.max_seq_length = config.max_seq_length
        kb = get_knowledge(settings)
        corpus = CourseCorpus.from_knowledge(kb)
        live = LiveEncoder(
            model, payload.query_prefix, payload.passage_prefix, serve_length, config.eval_batch_size
        )
        evaluator = _evaluator(
            corpus,
            live,
            [build_query(kb, occ) for occ in payload.eval_occupations],
            payload.pairs.validation_qrels.restrict(payload.eval_occupations),
            payload.eval_corpus,
        )
        rows = payload.rows
        train = Dataset.from_dict(
            {
                "anchor": [r.anchor for r in rows],
                "positive": [r.positive for r in rows],
                "negative": [r.negative for r in rows],
                "label": list(range(len(rows))),  # the row, so the loss can mask its false negatives
            }
        )
        checkpoints = work / "checkpoints"
        metric = f"eval_val_ndcg@{K}"
        args = SentenceTransformerTrainingArguments(
            **trainer_arguments(
                config,
                checkpoints,
                cuda=cuda,
                bf16=bf16,
                eval_strategy="steps",
                save_total_limit=2,
                logging_steps=max(1, min(25, config.eval_steps)),
            ),
            eval_steps=config.eval_steps,
            load_best_model_at_end=True,
            metric_for_best_model=metric,
            greater_is_better=True,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
        )
        budget = time_budget(config.time_budget_s)
        loss = _loss(model, 1.0 / config.temperature, _row_keys(rows), payload.relevant)
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=train,
            loss=loss,
            evaluator=evaluator,
            callbacks=[
                budget,
                _evaluate_last_step(),
                EarlyStoppingCallback(early_stopping_patience=config.patience),
            ],
        )
        resume = last_checkpoint(checkpoints, console, self.name)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started
        state = trainer.state
        best = state.best_model_checkpoint
        model.max_seq_length = serve_length
        model.prompts = {"query": payload.query_prefix, "passage": payload.passage_prefix}
        model.default_prompt_name = None
        model.save_pretrained(str(out))

        console.print(f"{self.name}: validating on {len(payload.validation_occupations)} occupations…")
        tick = time.perf_counter()
        metrics = validate(settings, corpus, kb, config, payload, out, base)
        history = [
            {"step": int(h["step"]), f"ndcg@{K}": round(float(h[metric]), 4)}
            for h in state.log_history
            if metric in h
        ]
        stopped_early = not budget.stopped and state.global_step < state.max_steps
        metrics.update(
            {
                f"val_sampled_ndcg@{K}_best": round(float(state.best_metric), 4)
                if state.best_metric is not None
                else None,
                "best_step": int(Path(best).name.split("-")[-1]) if best else None,
                "eval_history": history,
                "train_seconds": round(train_seconds, 1),
                "validation_seconds": round(time.perf_counter() - tick, 1),
                "train_steps": int(state.global_step),
                "max_steps": int(state.max_steps),
                "train_loss": round(float(output.training_loss), 4),
                "early_stopped": stopped_early,
                "stopped_by_time_budget": budget.stopped,
                "resumed_from": Path(resume).name if resume else None,
                "masked_in_batch_share": round(loss.masked / max(loss.scored, 1), 4),
                "device": "cuda" if cuda else "cpu",
                "torch_threads": torch.get_num_threads(),
                "bf16": bf16,
            }
        )
        console.print(
            f"{self.name}: validation nDCG@{K} {metrics[f'val_ndcg@{K}']:.3f} "
            f"(pretrained {metrics[f'val_ndcg@{K}_pretrained']:.3f}), {train_seconds:.0f}s training, "
            f"best step {metrics['best_step']}"
        )
        return TrainResult(
            format=FORMAT,
            base_model=base.name,
            base_source=base.source,
            languages=list(base.languages),
            metrics=metrics,
            config={
                "query_prefix": payload.query_prefix,
                "passage_prefix": payload.passage_prefix,
                "max_seq_length": serve_length,
                "train_max_seq_length": config.max_seq_length,
                "views": list(VIEWS),
                "loss": f"MultipleNegativesRankingLoss(scale={1.0 / config.temperature:g})",
            },
        )


def check_rows(rows: Sequence[Row], validation: Sequence[str], pairs: PairSet) -> None:
    """Rows only from train occupations, validation only from validation ones: raise otherwise."""
    train_side, validation_side = set(pairs.split.train), set(pairs.split.validation)
    bad = {r.occupation_uri for r in rows} - train_side
    if bad:
        raise Leakage(f"{len(bad)} non-train occupations in the training rows, e.g. {sorted(bad)[:3]}")
    bad = set(validation) - validation_side
    if bad:
        raise Leakage(f"{len(bad)} non-validation occupations in validation, e.g. {sorted(bad)[:3]}")


def _rng(config: RetrieverConfig, occupation: str) -> random.Random:
    return random.Random(f"{config.seed}|dense|{occupation}")


def _interleave(first: list[tuple[str, str]], second: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """a1 b1 a2 b2 …: rows take BM25 and dense negatives in turn."""
    out: list[tuple[str, str]] = []
    for i in range(max(len(first), len(second))):
        out.extend(part[i] for part in (first, second) if i < len(part))
    return out


def _row_keys(rows: Sequence[Row]) -> list[tuple[str, tuple[str, ...]]]:
    return [(r.occupation_uri, (r.positive_id, r.negative_id)) for r in rows]


def _eval_corpus(
    corpus: CourseCorpus,
    pairs: PairSet,
    occupations: list[str],
    indexed: set[str] | None,
    config: RetrieverConfig,
) -> set[str] | None:
    """The early-stopping catalog: the eval occupations' relevant courses and BM25 candidates, filled up with
    a seeded random sample of the indexed catalog to ``eval_corpus`` courses (None: the indexed catalog)."""
    if config.eval_corpus is None:
        return indexed
    described = {cid for cid, d in zip(corpus.ids, corpus.courses.has_description, strict=True) if d}
    if indexed is not None:
        described &= indexed
    wanted = set(occupations)
    must = {c for occ in occupations for c in pairs.validation_qrels.relevant(occ)}
    must |= {p.course_id for p in pairs.validation if p.occupation_uri in wanted}
    must &= described
    rest = sorted(described - must)
    fill = max(0, config.eval_corpus - len(must))
    return must | set(random.Random(config.seed).sample(rest, min(fill, len(rest))))


class LiveEncoder(Encoder):
    """The model being trained behind the runtime's ``Encoder`` interface: same prefixes, serving length."""

    name = "live"

    def __init__(
        self, model: Any, query_prefix: str, passage_prefix: str, max_seq_length: int, batch_size: int
    ) -> None:
        self.model, self.max_seq_length, self.batch_size = model, max_seq_length, batch_size
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 384)

    def _encode(self, texts: list[str], *, query: bool) -> np.ndarray:
        prefix = self.query_prefix if query else self.passage_prefix
        training, length = self.model.training, self.model.max_seq_length
        self.model.eval()
        self.model.max_seq_length = self.max_seq_length
        try:
            return self.model.encode(
                [prefix + t for t in texts],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            self.model.max_seq_length = length
            self.model.train(training)


class Unstored(VectorCache):
    """A pass-through ``VectorCache``: the weights change between evaluations, so nothing may be kept."""

    def __init__(self, encoder: Encoder) -> None:  # no SQLite file
        self.encoder = encoder

    def encode(
        self, texts: list[str], *, query: bool = True, batch_size: int = 256, progress: str | None = None
    ) -> np.ndarray:
        return self.encoder.encode(texts, query=query)


def dense_run(
    retriever: DenseRetriever, queries: Sequence[RetrievalQuery], k: int = K
) -> dict[str, list[tuple[str, float]]]:
    """Top-k per occupation, the query views encoded in batches first (``prime``)."""
    retriever.prime(queries)
    return {
        str(q.occupation_uri): [(h.course_id, h.score) for h in retriever.retrieve(q, k)] for q in queries
    }


def _metrics(qrels: Qrels, run: Mapping[str, list[tuple[str, float]]], suffix: str = "") -> dict[str, float]:
    from evaluation.metrics import evaluate_run

    means = evaluate_run(qrels, run, K).means
    return {f"val_{m}{suffix}": round(float(means[m]), 4) for m in (f"ndcg@{K}", f"mrr@{K}", f"recall@{K}")}


def _evaluator(
    corpus: CourseCorpus,
    encoder: LiveEncoder,
    queries: list[RetrievalQuery],
    qrels: Qrels,
    only: set[str] | None,
) -> Any:
    """A sentence-transformers evaluator: nDCG@10 of ``DenseRetriever`` (two views, the live model) over the
    courses ``only`` (None: every described course)."""
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

    from tools.retrieval.dense import DenseRetriever

    class DenseRetrievalEvaluator(BaseEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.name, self.primary_metric = "val", f"ndcg@{K}"

        def __call__(
            self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
        ) -> dict[str, float]:
            retriever = DenseRetriever(corpus, encoder, Unstored(encoder), exact=True, only=only)
            scores = _metrics(qrels, dense_run(retriever, queries))
            metrics = {key.removeprefix("val_"): value for key, value in scores.items()}
            return self.prefix_name_to_metrics(metrics, self.name)

    return DenseRetrievalEvaluator()


def _evaluate_last_step() -> Any:
    """A trainer callback: evaluate and checkpoint the last step too (the end of the schedule, or where the
    time budget stops), so the steps after the last regular evaluation can still be the best model."""
    from transformers import TrainerCallback

    class EvaluateLastStep(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step >= state.max_steps or control.should_training_stop:
                control.should_evaluate = control.should_save = True
            return control

    return EvaluateLastStep()


def _loss(
    model: Any,
    scale: float,
    keys: Sequence[tuple[str, tuple[str, ...]]],
    relevant: Mapping[str, set[str]],
) -> Any:
    """``MultipleNegativesRankingLoss`` (anchor → every course of the batch) with silver's false negatives
    masked; the dataset's ``label`` column carries each row's index into ``keys``."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    class MaskedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
        masked = 0  # dropped (anchor, other course) scores, for the manifest
        scored = 0

        def compute_loss_from_embeddings(self, embeddings: list[Any], labels: Any) -> Any:
            queries, docs = embeddings[0], torch.cat(embeddings[1:], dim=0)
            scores = self.similarity_fct(queries, docs) * self.scale
            mask = false_negative_mask([int(i) for i in labels.tolist()], keys, relevant)
            self.masked += int(mask.sum())
            self.scored += mask.size - len(mask)
            scores = scores.masked_fill(torch.from_numpy(mask).to(scores.device), float("-inf"))
            target = torch.arange(len(queries), device=scores.device)
            return torch.nn.functional.cross_entropy(scores, target)

    return MaskedMultipleNegativesRankingLoss(model, scale=scale)


def validate(
    settings: Settings,
    corpus: CourseCorpus,
    kb: KnowledgeBase,
    config: RetrieverConfig,
    payload: RetrieverData,
    folder: Path,
    base: ModelManifest,
) -> dict[str, Any]:
    """nDCG/MRR/recall@10 on the validation occupations over the indexed catalog, through the runtime code:
    the pretrained encoder as served (``dense_retriever``, its vector cache) and the trained model as
    ``SentenceTransformerEncoder`` will load it (the manifest's prefixes; nothing cached: the registered
    model's version differs)."""
    from knowledge.encoders import SentenceTransformerEncoder
    from tools.retrieval.dense import DenseRetriever
    from tools.retrieval.query import build_query
    from tools.retrieval.registry import dense_retriever, indexed_courses

    queries = [build_query(kb, occ) for occ in payload.validation_occupations]
    qrels = payload.pairs.validation_qrels
    pretrained = dense_retriever(settings, corpus, config.base_model, exact=True)
    manifest = base.model_copy(
        update={
            "name": folder.name,
            "config": {"query_prefix": payload.query_prefix, "passage_prefix": payload.passage_prefix},
        }
    )
    encoder = SentenceTransformerEncoder(folder, manifest)
    only = indexed_courses(settings, corpus)
    trained = DenseRetriever(corpus, encoder, Unstored(encoder), exact=True, only=only)
    return {
        "validation_occupations": len(queries),
        "validation_catalog": len(trained.rows),
        **_metrics(qrels, dense_run(trained, queries)),
        **_metrics(qrels, dense_run(pretrained, queries), "_pretrained"),
    }
