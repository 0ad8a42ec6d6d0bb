"""Stage ``reranker``: a cross-encoder trained from the packaged all-MiniLM-L6-v2 on the silver pairs.

The base weights come from the registry (``resolve(settings, "all-MiniLM-L6-v2")``); a fresh one-logit
classification head is put on top and trained with sentence-transformers' ``CrossEncoderTrainer`` and
``BinaryCrossEntropyLoss`` (soft targets: silver grade / 2, or binary). Nothing touches a model hub.

Validation is the job the model does at run time: re-rank the first stage's top ``validation_depth`` (the
product's routed dense retriever by default) for each validation occupation and score nDCG@10 / MRR@10 /
recall@10 against the silver qrels (``evaluation.metrics``), next to the first-stage order; the blend weight
of re-ranker and first-stage score that validates best is stored (``blend_alpha``) and applied at run time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field
from rich.console import Console

from craft.settings import Settings
from knowledge.models import resolve
from training.base import (
    Stage,
    StageConfig,
    TrainingData,
    TrainResult,
    accelerator,
    last_checkpoint,
    register,
    time_budget,
    trainer_arguments,
)
from training.pairs import PairSampling, PairSet, build_pairs

K = 10


class RerankerConfig(PairSampling):
    """Cross-encoder hyper-parameters; the field defaults are the ``cpu`` profile (the shipped model)."""

    PROFILE_DEFAULTS = {  # noqa: RUF012 - ClassVar declared on StageConfig
        "tiny": {
            "max_length": 64,
            "train_queries": 6,
            "positives": 1,
            "hard_negatives": 1,
            "random_negatives": 1,
            "validation_queries": 3,
            "validation_depth": 5,
            "batch_size": 4,
            "save_steps": 2,
            "eval_batch_size": 16,
            "time_budget_s": 120,
        },
        "cpu": {},
        "full": {
            "max_length": 256,
            "train_queries": None,
            "positives": 8,
            "hard_negatives": 8,
            "hard_depth": 100,
            "random_negatives": 4,
            "validation_queries": None,
            "validation_depth": 50,
            "epochs": 3.0,
            "batch_size": 64,
            "learning_rate": 3e-5,
            "bf16": True,
            "save_steps": 500,
            "eval_batch_size": 256,
            "time_budget_s": None,
        },
    }

    base_model: str = Field("all-MiniLM-L6-v2", description="Registry name of the starting weights.")
    max_length: int = Field(128, ge=16, le=512, description="Tokens of (query, course) together.")
    train_queries: int | None = Field(1600, ge=1, description="Train occupations sampled; None = all.")
    eval_batch_size: int = Field(64, ge=1)
    time_budget_s: float | None = Field(
        2400, gt=0, description="Stop training after this many seconds (cpu: 40 min of the 45)."
    )


@register
class RerankerStage(Stage):
    """Cross-encoder reranker (MiniLM-L6): re-orders the first stage's top 20 courses."""

    name = "reranker"
    role = "reranker"
    config_class = RerankerConfig
    headline = ("val_ndcg@10_blend", "val_ndcg@10", "val_ndcg@10_first_stage")

    def _base_identity(self, settings: Settings, config: StageConfig) -> str:
        assert isinstance(config, RerankerConfig)
        _, manifest = resolve(settings, config.base_model)
        return f"{manifest.name}|{manifest.source}"

    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        assert isinstance(config, RerankerConfig)
        pairs = build_pairs(settings, config)
        if not pairs.train:
            raise ValueError("no training pairs: the train split has no occupation with a relevant course")
        return TrainingData(hash=pairs.hash, summary=pairs.summary(), payload=pairs)

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
        """The fit needs the training pairs only (validation runs where the knowledge base is)."""
        pairs: PairSet = data.payload
        return PairSet(train=pairs.train, validation=[], validation_qrels=None, split=None)  # type: ignore[arg-type]

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
        """Train the cross-encoder into ``out``; returns the training statistics (no validation)."""
        assert isinstance(config, RerankerConfig)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from datasets import Dataset
        from sentence_transformers.cross_encoder import (
            CrossEncoder,
            CrossEncoderTrainer,
            CrossEncoderTrainingArguments,
        )
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

        pairs: PairSet = data.payload
        folder, _ = resolve(settings, config.base_model)
        cuda, bf16 = accelerator(config, console)
        model = CrossEncoder(
            str(folder),
            num_labels=1,
            max_length=config.max_length,
            local_files_only=True,
            device="cuda" if cuda else "cpu",
        )
        train = Dataset.from_dict(
            {
                "query": [p.query for p in pairs.train],
                "course": [p.course for p in pairs.train],
                "label": [p.label for p in pairs.train],
            }
        )
        checkpoints = work / "checkpoints"
        args = CrossEncoderTrainingArguments(
            **trainer_arguments(config, checkpoints, cuda=cuda, bf16=bf16),
        )
        budget = time_budget(config.time_budget_s)
        trainer = CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=train,
            loss=BinaryCrossEntropyLoss(model),
            callbacks=[budget],
        )
        resume = last_checkpoint(checkpoints, console, self.name)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started
        model.save_pretrained(str(out))
        return {
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
        """Validate the model in ``out`` on the first stage's candidate lists and describe it."""
        assert isinstance(config, RerankerConfig)
        from sentence_transformers.cross_encoder import CrossEncoder

        pairs: PairSet = data.payload
        _, base = resolve(settings, config.base_model)
        model = CrossEncoder(str(out), max_length=config.max_length, local_files_only=True)
        console.print(f"{self.name}: validating on {len(pairs.validation)} candidate pairs…")
        tick = time.perf_counter()
        metrics = validate(model, pairs, batch_size=config.eval_batch_size)
        metrics.update({**stats, "validation_seconds": round(time.perf_counter() - tick, 1)})
        console.print(
            f"{self.name}: validation nDCG@{K} {metrics[f'val_ndcg@{K}']:.3f} alone, "
            f"{metrics[f'val_ndcg@{K}_blend']:.3f} blended (alpha {metrics['blend_alpha']}), first stage "
            f"{metrics[f'val_ndcg@{K}_first_stage']:.3f}; {stats['train_seconds']:.0f}s training"
        )
        return TrainResult(
            format="cross-encoder",
            base_model=base.name,
            base_source=base.source,
            languages=list(base.languages),
            metrics=metrics,
            config={"first_stage_for_validation": f"{config.first_stage}@{config.validation_depth}"},
        )


ALPHAS = tuple(round(a * 0.1, 1) for a in range(11))


def validate(model: Any, pairs: PairSet, *, batch_size: int = 64, k: int = K) -> dict[str, Any]:
    """nDCG/MRR/recall@k of the validation candidate lists: first-stage order, cross-encoder alone, and the
    blend of the two whose weight (``blend_alpha``, the one the runtime applies) maximizes nDCG@k."""
    from evaluation.metrics import evaluate_run
    from tools.retrieval.rerank import blend, rerank_scores

    scores = rerank_scores(model, [(p.query, p.course) for p in pairs.validation], batch_size=batch_size)
    lists: dict[str, list[tuple[str, float, float]]] = {}
    for pair, score in zip(pairs.validation, scores, strict=True):
        first = (
            pair.first_score
            if pair.first_score is not None
            else -float(len(lists.get(pair.occupation_uri, [])))
        )
        lists.setdefault(pair.occupation_uri, []).append((pair.course_id, first, float(score)))

    def run_for(alpha: float) -> dict[str, list[tuple[str, float]]]:
        run = {}
        for occ, hits in lists.items():
            mixed = blend(np.array([h[2] for h in hits]), np.array([h[1] for h in hits]), alpha)
            order = sorted(range(len(hits)), key=lambda i: (-mixed[i], i))
            run[occ] = [(hits[i][0], float(len(hits) - rank)) for rank, i in enumerate(order)]
        return run

    by_alpha = {a: evaluate_run(pairs.validation_qrels, run_for(a), k).means for a in ALPHAS}
    best = max(ALPHAS, key=lambda a: (round(float(by_alpha[a][f"ndcg@{k}"]), 6), a))
    metrics: dict[str, Any] = {
        "validation_occupations": len(lists),
        "validation_pairs": len(pairs.validation),
        "blend_alpha": best,
        f"val_ndcg@{k}_by_alpha": {str(a): round(float(m[f"ndcg@{k}"]), 4) for a, m in by_alpha.items()},
    }
    for name in (f"ndcg@{k}", f"mrr@{k}", f"recall@{k}"):
        metrics[f"val_{name}"] = round(float(by_alpha[1.0][name]), 4)
        metrics[f"val_{name}_first_stage"] = round(float(by_alpha[0.0][name]), 4)
        metrics[f"val_{name}_blend"] = round(float(by_alpha[best][name]), 4)
    return metrics
