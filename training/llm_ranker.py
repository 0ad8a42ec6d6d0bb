"""Stage ``llm-ranker``: a LoRA adapter (peft) on SmolLM2-135M-Instruct that answers "Yes"/"No" per course.

TALLRec-style pointwise ranking: the prompt (``tools.retrieval.llm_rank.PointwiseScorer.encode``: occupation,
missing skills, the question, one course) is followed by the assistant turn, and the loss is the
cross-entropy of the answer token alone — ``−(y·log p(Yes) + (1−y)·log p(No))`` over the full vocabulary at
that one position, ``y`` the pair's label (silver grade / 2 by default) — so nothing else of the prompt is
trained on and the model keeps answering with a plain "Yes"/"No" (what a vLLM server samples). At run time
the score is the two-way softmax ``P(Yes)``.

The pairs are the reranker's (``training.pairs``: train-split occupations; positives, hard negatives from the
first stage, random negatives). LoRA on the attention projections only (q, k, v, o); the adapter is saved in
the standard peft format (``adapter_config.json`` + ``adapter_model.safetensors``,
``base_model_name_or_path`` = the hub id) so ``vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora
--lora-modules llm-ranker=<folder>`` serves it; the base weights here are the packaged GGUF Q4_1
dequantized, so the hub weights differ slightly.

Validation is the job the model does at run time and the calibration check, for the untrained base model
(the adapter disabled) and the trained one: AUC of ``P(Yes)`` on the validation candidates (the first stage's
top ``validation_depth`` per validation occupation, relevant = silver grade ≥ 1), nDCG/MRR/recall@10 of the
re-ranked lists next to the first-stage order and the blend with it (``blend_alpha``, applied at run time as
the cross-encoder's is), mean ``P(Yes)`` on relevant vs other candidates and the share answered "Yes"
(``P(Yes) > 0.5``: does it say yes to everything?), and the cost per query: forward passes against the
pairwise method's ``n·log2 n`` and the tokens the shared prompt prefix saves.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field
from rich.console import Console
from tqdm.auto import tqdm

from craft.settings import Settings
from tools.retrieval.llm_rank import (
    ANSWERS,
    BASE_LLM,
    FORMAT,
    QUESTION,
    SYSTEM,
    PointwiseScorer,
    ScoringStats,
    person_of,
    resolve_base,
)
from training.base import (
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
from training.pairs import PairSampling, PairSet, build_pairs
from training.reranker import ALPHAS

K = 10


class LLMRankerConfig(PairSampling):
    """LoRA hyper-parameters and prompt budgets; the field defaults are the ``cpu`` profile (shipped model).

    The cpu profile keeps prompts near 130 tokens (≤ 40 for the skills, 40 for the course) so 35 minutes
    of training see about one epoch of ≈ 4,000 pairs on 2 cores, and serving re-ranks 20 candidates in
    ≈ 1,000 tokens (the shared prefix once, 20 × ≈ 46 suffix tokens): about 1.3 s on 2 cores.
    """

    PROFILE_DEFAULTS = {  # noqa: RUF012 - ClassVar declared on StageConfig
        "tiny": {
            "train_queries": 2,
            "positives": 1,
            "hard_negatives": 1,
            "random_negatives": 1,
            "validation_queries": 2,
            "validation_depth": 5,
            "skill_tokens": 12,
            "course_tokens": 12,
            "lora_r": 4,
            "batch_size": 2,
            "save_steps": 2,
            "eval_batch_size": 5,
            "time_budget_s": 900,  # a safety net only: 3 steps take seconds on an idle machine
        },
        "cpu": {},
        "full": {
            "train_queries": None,
            "positives": 4,
            "hard_negatives": 4,
            "hard_depth": 100,
            "random_negatives": 2,
            "validation_queries": None,
            "validation_depth": 20,
            "skill_tokens": 96,
            "course_tokens": 128,
            "epochs": 2.0,
            "batch_size": 32,
            "bf16": True,
            "save_steps": 500,
            "eval_batch_size": 64,
            "time_budget_s": None,
        },
    }

    base_model: str = Field(BASE_LLM, description="Registry name of the causal LM the adapter is trained on.")
    train_queries: int | None = Field(800, ge=1, description="Train occupations sampled; None = all.")
    validation_queries: int | None = Field(60, ge=1, description="Validation occupations; None = all.")
    learning_rate: float = Field(2e-4, gt=0, description="LoRA learns at a higher rate than full tuning.")
    batch_size: int = Field(8, ge=1)
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1, description="Modules LoRA adapts."
    )
    skill_tokens: int = Field(40, ge=1, le=512, description="Token budget of the missing-skills list.")
    course_tokens: int = Field(
        40, ge=1, le=1024, description="Token budget of a course (title, description)."
    )
    eval_batch_size: int = Field(20, ge=1, description="Candidates per forward pass (validation, serving).")
    time_budget_s: float | None = Field(
        2100, gt=0, description="Stop training after this many seconds (cpu: 35 min; validation follows)."
    )


@register
class LLMRankerStage(Stage):
    """SmolLM2 + LoRA, pointwise Yes/No: re-orders the first stage's top 20 courses by ``P(Yes)``."""

    name = "llm-ranker"
    role = "reranker"
    config_class = LLMRankerConfig
    headline = ("val_auc", "val_auc_base", "val_ndcg@10_blend", "val_ndcg@10_first_stage")

    def _base_identity(self, settings: Settings, config: StageConfig) -> str:
        assert isinstance(config, LLMRankerConfig)
        _, manifest = resolve_base(settings, config.base_model)
        # the prompt wording is part of what is trained: a change of it trains anew
        return f"{manifest.name}|{manifest.source}|{digest([SYSTEM, QUESTION, ANSWERS])[:12]}"

    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        assert isinstance(config, LLMRankerConfig)
        from knowledge.store import get_knowledge
        from tools.retrieval.query import build_query

        kb = get_knowledge(settings)
        pairs = build_pairs(settings, config, kb=kb)
        if not pairs.train:
            raise ValueError("no training pairs: the train split has no occupation with a relevant course")
        occupations = sorted({p.occupation_uri for p in [*pairs.train, *pairs.validation]})
        persons = {occ: person_of(build_query(kb, occ)) for occ in occupations}
        return TrainingData(
            hash=digest([pairs.hash, persons]), summary=pairs.summary(), payload=(pairs, persons)
        )

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
        assert isinstance(config, LLMRankerConfig)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import TrainingArguments

        from tools.retrieval.llm_rank import load_causal_lm

        pairs, persons = data.payload
        folder, base = resolve_base(settings, config.base_model)
        cuda, bf16 = accelerator(config, console)
        model, tokenizer = load_causal_lm(folder)
        model.config.use_cache = False
        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_targets),
            bias="none",
        )
        peft_model = get_peft_model(model, lora)
        scorer = PointwiseScorer(
            peft_model.get_base_model(),
            tokenizer,
            skill_tokens=config.skill_tokens,
            course_tokens=config.course_tokens,
            batch_size=config.eval_batch_size,
        )
        train = [
            {"input_ids": scorer.encode(*persons[p.occupation_uri], p.course), "target": p.label}
            for p in pairs.train
        ]
        lengths = [len(row["input_ids"]) for row in train]
        checkpoints = work / "checkpoints"
        args = TrainingArguments(
            **trainer_arguments(config, checkpoints, cuda=cuda, bf16=bf16),
            remove_unused_columns=False,
        )
        budget = time_budget(config.time_budget_s)
        trainer = _answer_trainer(
            peft_model, args, train, scorer.answer_ids, scorer.pad_id, callbacks=[budget]
        )
        resume = last_checkpoint(checkpoints, console, self.name)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started
        peft_model.eval()
        # the hub id, so vLLM (or peft) can pair the adapter with the published base weights
        peft_model.peft_config["default"].base_model_name_or_path = base.base_model
        peft_model.save_pretrained(str(out), save_embedding_layers=False)  # LoRA only, no hub look-up

        console.print(
            f"{self.name}: validating the base model and the adapter on {len(pairs.validation)} pairs…"
        )
        tick = time.perf_counter()
        with peft_model.disable_adapter():
            untrained = validate(scorer, pairs, persons, progress="validation (base)")
        scorer.stats = ScoringStats()
        trained = validate(scorer, pairs, persons, progress="validation (adapter)")
        metrics = _merge(trained, untrained)
        metrics.update(
            {
                "train_seconds": round(train_seconds, 1),
                "validation_seconds": round(time.perf_counter() - tick, 1),
                "train_steps": int(trainer.state.global_step),
                "max_steps": int(trainer.state.max_steps),
                "train_loss": round(float(output.training_loss), 4),
                "train_prompt_tokens_mean": round(float(np.mean(lengths)), 1),
                "train_prompt_tokens_max": int(max(lengths)),
                "trainable_parameters": sum(p.numel() for p in peft_model.parameters() if p.requires_grad),
                "stopped_by_time_budget": budget.stopped,
                "resumed_from": Path(resume).name if resume else None,
                "device": "cuda" if cuda else "cpu",
                "torch_threads": torch.get_num_threads(),
                "bf16": bf16,
            }
        )
        console.print(
            f"{self.name}: validation AUC {_fmt(metrics['val_auc'])} (base {_fmt(metrics['val_auc_base'])}), "
            f"nDCG@{K} {metrics[f'val_ndcg@{K}']:.3f} alone (base {metrics[f'val_ndcg@{K}_base']:.3f}), "
            f"{metrics[f'val_ndcg@{K}_blend']:.3f} blended (alpha {metrics['blend_alpha']}), first stage "
            f"{metrics[f'val_ndcg@{K}_first_stage']:.3f}; {train_seconds:.0f}s training"
        )
        return TrainResult(
            format=FORMAT,
            base_model=base.name,
            base_source=base.source,
            languages=list(base.languages),
            metrics=metrics,
            config={
                "first_stage_for_validation": f"{config.first_stage}@{config.validation_depth}",
                "hub_base_model": base.base_model,
                "adapter_files": ["adapter_config.json", "adapter_model.safetensors"],
                "prompt": {"system": SYSTEM, "question": QUESTION, "answers": list(ANSWERS)},
                "score": "P(Yes) = softmax over the Yes/No logits at the assistant turn's first token",
            },
        )


def _answer_trainer(
    model: Any,
    args: Any,
    train: list[dict[str, Any]],
    answer_ids: tuple[int, int],
    pad_id: int,
    *,
    callbacks: list[Any],
) -> Any:
    """A ``Trainer`` whose loss is the answer token's cross-entropy with soft Yes/No targets, nothing else."""
    import torch
    from transformers import Trainer

    yes, no = answer_ids

    def collate(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row["input_ids"])] = torch.tensor(row["input_ids"])
            mask[i, : len(row["input_ids"])] = 1
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "lengths": torch.tensor([len(r["input_ids"]) for r in rows]),
            "target": torch.tensor([float(r["target"]) for r in rows]),
        }

    class AnswerTrainer(Trainer):
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, torch.Tensor],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            lm = model.get_base_model() if hasattr(model, "get_base_model") else model
            hidden = lm.get_decoder()(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False
            ).last_hidden_state
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            logits = lm.get_output_embeddings()(hidden[rows, inputs["lengths"] - 1]).float()
            logp = logits.log_softmax(dim=-1)
            target = inputs["target"].float()
            loss = -(target * logp[:, yes] + (1 - target) * logp[:, no]).mean()
            return (loss, {"logits": logits[:, [yes, no]]}) if return_outputs else loss

    return AnswerTrainer(
        model=model, args=args, train_dataset=train, data_collator=collate, callbacks=callbacks
    )


def validate(
    scorer: PointwiseScorer,
    pairs: PairSet,
    persons: dict[str, tuple[str, list[str]]],
    *,
    k: int = K,
    alphas: tuple[float, ...] = ALPHAS,
    progress: str | None = None,
) -> dict[str, Any]:
    """AUC, re-ranking quality and calibration of ``P(Yes)`` on the validation candidate lists.

    Like the cross-encoder's validation: the first-stage order, the LLM alone, and the blend with the
    first-stage score (``blend`` of the yes/no logit margin) whose weight ``blend_alpha`` maximizes nDCG@k.
    """
    from sklearn.metrics import roc_auc_score

    from evaluation.metrics import evaluate_run
    from tools.retrieval.rerank import blend

    lists: dict[str, list[Any]] = {}
    for pair in pairs.validation:
        lists.setdefault(pair.occupation_uri, []).append(pair)
    margins: dict[str, np.ndarray] = {}
    for occ, candidates in tqdm(lists.items(), desc=progress, unit="occ", disable=progress is None):
        margins[occ] = scorer.margins(*persons[occ], [c.course for c in candidates])

    def first_scores(candidates: list[Any]) -> np.ndarray:
        return np.array(
            [-float(i) if c.first_score is None else c.first_score for i, c in enumerate(candidates)]
        )

    def run_for(alpha: float) -> dict[str, list[tuple[str, float]]]:
        run = {}
        for occ, candidates in lists.items():
            mixed = blend(margins[occ], first_scores(candidates), alpha) if alpha < 1.0 else margins[occ]
            order = sorted(range(len(candidates)), key=lambda i: (-mixed[i], i))
            run[occ] = [(candidates[i].course_id, float(len(order) - r)) for r, i in enumerate(order)]
        return run

    by_alpha = {a: evaluate_run(pairs.validation_qrels, run_for(a), k).means for a in {*alphas, 0.0, 1.0}}
    best = max(alphas, key=lambda a: (round(float(by_alpha[a][f"ndcg@{k}"]), 6), a))
    p = _sigmoid(np.concatenate([margins[occ] for occ in lists]))
    y = np.array([c.grade >= 1 for candidates in lists.values() for c in candidates], dtype=bool)
    metrics: dict[str, Any] = {
        "validation_occupations": len(lists),
        "validation_pairs": len(p),
        "val_auc": round(float(roc_auc_score(y, p)), 4) if 0 < y.sum() < len(y) else None,
        "blend_alpha": best,
        f"val_ndcg@{k}_by_alpha": {str(a): round(float(by_alpha[a][f"ndcg@{k}"]), 4) for a in alphas},
    }
    for name in (f"ndcg@{k}", f"mrr@{k}", f"recall@{k}"):
        metrics[f"val_{name}"] = round(float(by_alpha[1.0][name]), 4)
        metrics[f"val_{name}_first_stage"] = round(float(by_alpha[0.0][name]), 4)
        metrics[f"val_{name}_blend"] = round(float(by_alpha[best][name]), 4)
    metrics["calibration"] = calibration(p, y)
    metrics["cost"] = scorer.stats.summary()
    return metrics


def calibration(p_yes: np.ndarray, relevant: np.ndarray) -> dict[str, Any]:
    """Does the model discriminate, or answer the same to everything? Mean ``P(Yes)`` by label, yes-rate."""
    p_yes, relevant = np.asarray(p_yes, dtype=float), np.asarray(relevant, dtype=bool)
    if not len(p_yes):
        raise ValueError("no scores to calibrate")

    def mean(mask: np.ndarray) -> float | None:
        return round(float(p_yes[mask].mean()), 4) if mask.any() else None

    return {
        "mean_p_yes_relevant": mean(relevant),
        "mean_p_yes_other": mean(~relevant),
        "yes_rate": round(float((p_yes > 0.5).mean()), 4),
        "p_yes_std": round(float(p_yes.std()), 4),
        "relevant_share": round(float(relevant.mean()), 4),
    }


def _merge(trained: dict[str, Any], untrained: dict[str, Any]) -> dict[str, Any]:
    """The adapter's figures as ``val_*``, the untrained model's (alone) as ``val_*_base``."""
    merged = dict(trained)
    for key, value in untrained.items():
        if key.startswith("val_") and not key.endswith(("_first_stage", "_blend", "_by_alpha")):
            merged[f"{key}_base"] = value
    merged["calibration_base"] = untrained["calibration"]
    cost = trained["cost"]
    merged.update(
        {
            "forward_passes_per_query": cost.get("forward_passes_per_query"),
            "pairwise_forward_passes_per_query": cost.get("pairwise_forward_passes_per_query"),
            "shared_prefix_token_saving": cost.get("shared_prefix_token_saving"),
        }
    )
    return merged


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
