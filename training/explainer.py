"""Stage ``explainer``: a LoRA adapter (peft) on SmolLM2-135M-Instruct writing short grounded explanations.

**Data** (synthetic, from the real knowledge base). Occupations come from the **train** side of the occupation
split (``split_occupations``, the gold occupations pinned to test, as in ``training.pairs``); per occupation a
simulated user already has a seeded share of its skills (so gaps vary), and the courses are silver-relevant
ones plus non-relevant ones from BM25's top ranks (the cards a user also sees, which often cover none of the
gap). Each (occupation, course) becomes a ``FactSheet``; its reference explanation is written by a teacher
model through any OpenAI-compatible endpoint when one is configured (``CRAFT_OPENAI_BASE_URL`` +
``CRAFT_OPENAI_MODEL``), and by the grounded template generator with paraphrase variety otherwise. Teacher
answers that fail the faithfulness check are replaced by the template (counted). Held-out sheets and
references come from **validation** occupations only.

**Training**: the prompt is the sheet's compact rendering in SmolLM2's chat template
(``tools.explain.prompt``); the loss is on the assistant answer (and its end-of-turn token) only. The adapter
is saved in standard peft format (``base_model_name_or_path`` = the hub id) for ``vllm serve
HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora --lora-modules explainer=<folder>``.

**Validation**: on the held-out sheets, the base model zero-shot (adapter disabled) and the trained adapter
each write explanations; metrics are the faithfulness rate (nothing named that the sheet lacks), the share
that passes every check (else the runtime falls back to the template), ROUGE-L F1 against the references and
the mean length in tokens.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from rich.console import Console
from tqdm.auto import tqdm

from craft.settings import Settings
from knowledge.models import prepared_base
from tools.explain.facts import FactSheet, build_fact_sheet
from tools.explain.prompt import PROMPT_VERSION, messages
from tools.explain.templates import MAX_TOKENS, template_explanation
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

if TYPE_CHECKING:
    from knowledge.store import KnowledgeBase
    from tools.explain.validate import FaithfulnessChecker

ReferenceSource = Literal["teacher", "template"]
FORMAT = "peft-lora"


class ExplainerConfig(StageConfig):
    """Data sampling, LoRA and generation settings; the field defaults are the ``cpu`` profile.

    The cpu profile keeps prompts near 150 tokens (six gap skills on the sheet, ≈ 180 with the answer), so
    25 minutes of training on 2 cores see several hundred of the 900 examples (one epoch at most; the time
    budget stops it), and validation (base and adapter on 40 held-out sheets) fits in the rest.
    """

    PROFILE_DEFAULTS = {  # noqa: RUF012 - ClassVar declared on StageConfig
        "tiny": {
            "train_occupations": 1,
            "relevant_per_occupation": 1,
            "retrieved_per_occupation": 1,
            "validation_occupations": 2,
            "validation_per_occupation": 1,
            "max_gap": 2,
            "max_tokens": 24,
            "max_length": 256,
            "lora_r": 4,
            "batch_size": 2,
            "save_steps": 1,
            "eval_batch_size": 2,
            "time_budget_s": 120,
        },
        "cpu": {},
        "full": {
            "train_occupations": None,
            "relevant_per_occupation": 3,
            "retrieved_per_occupation": 2,
            "references_per_sheet": 2,
            "validation_occupations": 200,
            "max_gap": 8,
            "max_length": 384,
            "epochs": 3.0,
            "batch_size": 32,
            "bf16": True,
            "save_steps": 200,
            "eval_batch_size": 64,
            "time_budget_s": None,
        },
    }

    base_model: str = Field("SmolLM2-135M-Instruct", description="Registry name of the base causal LM.")
    train_occupations: int | None = Field(300, ge=1, description="Train-split occupations; None = all.")
    relevant_per_occupation: int = Field(2, ge=0, description="Silver-relevant courses per occupation.")
    retrieved_per_occupation: int = Field(
        1, ge=0, description="Non-relevant courses from BM25's top ``retrieval_depth`` per occupation."
    )
    retrieval_depth: int = Field(20, ge=1)
    known_share: float = Field(
        0.3, ge=0, lt=1, description="The simulated user already has up to this share of the skills."
    )
    references_per_sheet: int = Field(1, ge=1, description="Template paraphrases per training sheet.")
    languages: list[Literal["en", "de"]] = Field(
        ["en"], min_length=1, description="Sheet languages (SmolLM2 writes English; German uses templates)."
    )
    max_gap: int = Field(6, ge=1, le=20, description="Gap skills listed on a sheet (covered ones always).")
    validation_occupations: int | None = Field(20, ge=1, description="Validation-split occupations.")
    validation_per_occupation: int = Field(2, ge=1, description="Held-out sheets per validation occupation.")
    teacher: Literal["auto", "template", "openai"] = Field(
        "auto", description="References: the OpenAI-compatible teacher when configured (auto), or templates."
    )
    teacher_temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(MAX_TOKENS, ge=8, le=256, description="Explanation budget (tokens).")
    max_length: int = Field(320, ge=64, le=1024, description="Prompt + answer tokens; longer are dropped.")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Linear layers that get LoRA weights (all of them: the answer style is learned).",
    )
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    eval_batch_size: int = Field(20, ge=1)
    time_budget_s: float | None = Field(1500, gt=0, description="cpu: 25 of the 45 minutes training.")


@dataclass(frozen=True)
class Example:
    sheet: FactSheet
    reference: str
    source: ReferenceSource


@dataclass
class ExplainerData:
    train: list[Example]
    validation: list[Example]
    counts: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        def share(examples: list[Example], kind: str) -> int:
            return sum(e.source == kind for e in examples)

        return {
            "train_examples": len(self.train),
            "train_sheets": len({(e.sheet.occupation.uri, e.sheet.course.id) for e in self.train}),
            "train_occupations": len({e.sheet.occupation.uri for e in self.train}),
            "validation_examples": len(self.validation),
            "validation_occupations": len({e.sheet.occupation.uri for e in self.validation}),
            "references_teacher": share(self.train, "teacher") + share(self.validation, "teacher"),
            "references_template": share(self.train, "template") + share(self.validation, "template"),
            "without_covered_skill": sum(not e.sheet.covered for e in self.train),
            "languages": sorted({e.sheet.language for e in self.train}),
            "prompt_version": PROMPT_VERSION,
            **self.counts,
        }


def _sheets_for(
    kb: KnowledgeBase,
    occupations: list[str],
    *,
    relevant: Any,
    course_skills: dict[str, set[str]],
    bm25: Any,
    n_relevant: int,
    n_retrieved: int,
    config: ExplainerConfig,
    desc: str,
    progress: bool,
) -> list[FactSheet]:
    """Seeded per occupation (its sheets do not depend on which other occupations are sampled)."""
    from tools.retrieval.query import build_query

    sheets: list[FactSheet] = []
    for occ in tqdm(occupations, desc=desc, unit="occ", disable=not progress):
        rng = random.Random(f"{config.seed}|explainer|{occ}")
        skills = [uri for uri, _ in kb.occupation_skills.get(occ, [])]
        share = rng.uniform(0, config.known_share)
        have = {uri for uri in skills if rng.random() < share}
        lang = rng.choice(config.languages)
        rel = sorted(relevant.relevant(occ))
        chosen = rng.sample(rel, min(n_relevant, len(rel)))
        if n_retrieved:
            query = build_query(kb, occ, have, lang=lang)
            hits = [h.course_id for h in bm25.retrieve(query, config.retrieval_depth)]
            pool = [c for c in hits if c not in rel and c not in chosen]
            chosen += rng.sample(pool, min(n_retrieved, len(pool)))
        for cid in chosen:
            sheets.append(
                build_fact_sheet(kb, occ, cid, course_skills, have=have, lang=lang, max_gap=config.max_gap)
            )
    return sheets


def _subset(occupations: list[str], n: int | None, seed: int) -> list[str]:
    """A seeded sample of at most ``n`` occupations, sorted (all of them for ``None``)."""
    if n is None or len(occupations) <= n:
        return list(occupations)
    return sorted(random.Random(seed).sample(occupations, n))


def build_examples(
    settings: Settings,
    config: ExplainerConfig,
    *,
    checker: FaithfulnessChecker,
    count_tokens: Any,
    console: Console | None = None,
    progress: bool = True,
) -> ExplainerData:
    """Train and held-out examples (see the module docstring); deterministic for a fixed teacher."""
    from evaluation.harness import resolve_ground_truth
    from evaluation.splits import split_occupations
    from knowledge.course_skills import load_course_skills
    from knowledge.store import get_knowledge
    from tools.retrieval.corpus import CourseCorpus
    from tools.retrieval.lexical import BM25Retriever

    kb = get_knowledge(settings)
    course_skills = load_course_skills(settings)
    silver, _, gold = resolve_ground_truth(settings, kb, "silver", course_skills)
    split = split_occupations(kb.occupations, seed=config.seed, pinned_test=gold.queries() if gold else [])
    bm25 = BM25Retriever(CourseCorpus.from_knowledge(kb))
    train_side = [o for o in split.train if silver.has_relevant(o)]
    validation_side = [o for o in split.validation if silver.has_relevant(o)]
    train_occ = _subset(train_side, config.train_occupations, config.seed)
    validation_occ = _subset(validation_side, config.validation_occupations, config.seed)
    common = {"relevant": silver, "course_skills": course_skills, "bm25": bm25, "config": config}
    per = config.validation_per_occupation  # half relevant, half retrieved, like the training mix
    n_val_relevant = (per + 1) // 2 if config.retrieved_per_occupation else per
    train_sheets = _sheets_for(
        kb,
        train_occ,
        n_relevant=config.relevant_per_occupation,
        n_retrieved=config.retrieved_per_occupation,
        desc="train sheets",
        progress=progress,
        **common,
    )
    validation_sheets = _sheets_for(
        kb,
        validation_occ,
        n_relevant=n_val_relevant,
        n_retrieved=per - n_val_relevant,
        desc="validation sheets",
        progress=progress,
        **common,
    )
    leaked = {s.occupation.uri for s in train_sheets} - set(split.train)
    leaked |= {s.occupation.uri for s in validation_sheets} - set(split.validation)
    if leaked:
        raise RuntimeError(f"occupations on the wrong side of the split: {sorted(leaked)[:3]}")
    if not train_sheets:
        raise ValueError("no training sheets: the train split has no occupation with a relevant course")

    def template(sheet: FactSheet, variant: int) -> str:
        return template_explanation(
            sheet, variant=variant, seed=config.seed, max_tokens=config.max_tokens, count_tokens=count_tokens
        )

    teacher = _teacher(settings, config)
    counts: dict[str, Any] = {"teacher": teacher.name if teacher else None}
    taught: dict[int, str] = {}
    everything = train_sheets + validation_sheets
    if teacher is not None:
        answers, counts["teacher_rejected"] = _teach(
            settings, teacher, everything, config, checker, console=console
        )
        taught = {i: a for i, a in enumerate(answers) if a is not None}
    train: list[Example] = []
    for i, sheet in enumerate(train_sheets):
        if i in taught:
            train.append(Example(sheet, taught[i], "teacher"))
        for variant in range(config.references_per_sheet if i not in taught else 0):
            train.append(Example(sheet, template(sheet, variant), "template"))
    validation = []
    for j, sheet in enumerate(validation_sheets):
        i = len(train_sheets) + j
        validation.append(
            Example(sheet, taught[i], "teacher")
            if i in taught
            else Example(sheet, template(sheet, 0), "template")
        )
    counts["split_seed"] = split.seed
    counts["gold_pinned_to_test"] = len(split.pinned_test)
    return ExplainerData(train=train, validation=validation, counts=counts)


def _teacher(settings: Settings, config: ExplainerConfig) -> Any:
    """The OpenAI-compatible teacher backend, or ``None`` (templates)."""
    from tools.explain.backends import OpenAIBackend

    configured = bool(settings.openai_base_url and settings.openai_model)
    if config.teacher == "template" or (config.teacher == "auto" and not configured):
        return None
    if not configured:
        raise ConfigError("teacher='openai' needs CRAFT_OPENAI_BASE_URL and CRAFT_OPENAI_MODEL")
    return OpenAIBackend.from_settings(settings, temperature=config.teacher_temperature)


def _teach(
    settings: Settings,
    teacher: Any,
    sheets: list[FactSheet],
    config: ExplainerConfig,
    checker: FaithfulnessChecker,
    *,
    console: Console | None,
) -> tuple[list[str | None], int]:
    """Teacher answers (cached on disk per teacher and prompt), ``None`` where one fails validation."""
    from tools.explain.backends import BackendError

    key = digest([teacher.url, teacher.model, config.teacher_temperature, PROMPT_VERSION])[:12]
    cache_file = settings.cache_dir / "explainer" / f"teacher-{key}.json"
    cache: dict[str, str] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    keys = [digest([messages(s), config.max_tokens]) for s in sheets]
    missing = [i for i, k in enumerate(keys) if k not in cache]
    if missing:
        if console:
            console.print(f"explainer: asking teacher {teacher.name} for {len(missing)} references…")
        try:
            answers = teacher.generate(
                [messages(sheets[i]) for i in missing], max_new_tokens=config.max_tokens
            )
        except BackendError as error:
            raise RuntimeError(
                f"the teacher failed ({error}); set teacher: template to train without it"
            ) from error
        for i, answer in zip(missing, answers, strict=True):
            cache[keys[i]] = answer
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, ensure_ascii=False))
    out: list[str | None] = []
    rejected = 0
    for sheet, key in zip(sheets, keys, strict=True):
        answer = " ".join(cache[key].split())
        if checker.check(answer, sheet).ok:
            out.append(answer)
        else:
            out.append(None)
            rejected += 1
    return out, rejected


@register
class ExplainerStage(Stage):
    """LoRA on SmolLM2-135M-Instruct: fact sheet → ≤ 60-token grounded explanation."""

    name = "explainer"
    role = "explainer"
    config_class = ExplainerConfig
    headline = ("adapter_faithful_rate", "base_faithful_rate", "adapter_rougeL", "adapter_valid_rate")

    def _base_identity(self, settings: Settings, config: StageConfig) -> str:
        assert isinstance(config, ExplainerConfig)
        _, manifest = prepared_base(settings, config.base_model)
        return f"{manifest.name}|{manifest.source}"

    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        from knowledge.store import get_knowledge
        from tools.explain.validate import checker_for

        assert isinstance(config, ExplainerConfig)
        tokenizer = _tokenizer(settings, config)
        counter = _counter(tokenizer)
        checker = checker_for(get_knowledge(settings)).with_counter(counter, config.max_tokens)
        data = build_examples(settings, config, checker=checker, count_tokens=counter)
        rows = [
            [side, e.sheet.model_dump(mode="json"), e.reference, e.source]
            for side, examples in (("train", data.train), ("validation", data.validation))
            for e in examples
        ]
        return TrainingData(hash=digest([PROMPT_VERSION, rows]), summary=data.summary(), payload=data)

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
        assert isinstance(config, ExplainerConfig)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from datasets import Dataset
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

        from knowledge.store import get_knowledge
        from tools.explain.validate import checker_for

        payload: ExplainerData = data.payload
        folder, base = prepared_base(settings, config.base_model)
        tokenizer = _tokenizer(settings, config)
        cuda, bf16 = accelerator(config, console)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True)
        model.config.pad_token_id = tokenizer.pad_token_id
        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_targets),
        )
        peft_model = get_peft_model(model, lora)
        rows, dropped = encode_examples(tokenizer, payload.train, config.max_length)
        if not rows["input_ids"]:
            raise ValueError(f"every training example is longer than max_length={config.max_length}")
        checkpoints = work / "checkpoints"
        args = TrainingArguments(
            **trainer_arguments(
                config, checkpoints, cuda=cuda, bf16=bf16, logging_steps=max(1, min(25, config.save_steps))
            ),
            lr_scheduler_type="cosine",
            label_names=["labels"],
            remove_unused_columns=False,
        )
        budget = time_budget(config.time_budget_s)
        trainer = Trainer(
            model=peft_model,
            args=args,
            train_dataset=Dataset.from_dict(rows),
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
            callbacks=[budget],
        )
        resume = last_checkpoint(checkpoints, console, self.name)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started
        peft_model.eval()
        peft_model.save_pretrained(str(out))
        # the hub id (not this machine's folder), so vLLM or peft pair the adapter with the published base
        adapter_config = out / "adapter_config.json"
        saved = json.loads(adapter_config.read_text())
        adapter_config.write_text(json.dumps({**saved, "base_model_name_or_path": base.base_model}, indent=2))

        console.print(
            f"{self.name}: validating base (zero-shot) and adapter on {len(payload.validation)} sheets…"
        )
        tick = time.perf_counter()
        checker = checker_for(get_knowledge(settings)).with_counter(_counter(tokenizer), config.max_tokens)
        metrics, samples = validate(peft_model, tokenizer, payload.validation, checker, config)
        with (out / "validation_samples.jsonl").open("w", encoding="utf-8") as handle:
            for sample in samples:
                handle.write(json.dumps(sample, ensure_ascii=False) + "\n")
        metrics.update(
            {
                "train_examples_used": len(rows["input_ids"]),
                "train_examples_too_long": dropped,
                "train_seconds": round(train_seconds, 1),
                "validation_seconds": round(time.perf_counter() - tick, 1),
                "train_steps": int(trainer.state.global_step),
                "max_steps": int(trainer.state.max_steps),
                "train_loss": round(float(output.training_loss), 4),
                "stopped_by_time_budget": budget.stopped,
                "resumed_from": Path(resume).name if resume else None,
                "trainable_parameters": sum(p.numel() for p in peft_model.parameters() if p.requires_grad),
                "device": "cuda" if cuda else "cpu",
                "torch_threads": torch.get_num_threads(),
                "bf16": bf16,
            }
        )
        m = metrics
        console.print(
            f"{self.name}: faithful {m['adapter_faithful_rate']:.2f} (base {m['base_faithful_rate']:.2f}), "
            f"ROUGE-L {m['adapter_rougeL']:.3f} (base {m['base_rougeL']:.3f}), template fallback "
            f"{m['adapter_template_fallback_rate']:.2f}; {train_seconds:.0f}s training"
        )
        return TrainResult(
            format=FORMAT,
            base_model=base.name,
            base_source=base.source,
            languages=list(dict.fromkeys(config.languages)),
            metrics=metrics,
            config={
                "prompt_version": PROMPT_VERSION,
                "max_tokens": config.max_tokens,
                "lora": {
                    "r": config.lora_r,
                    "alpha": config.lora_alpha,
                    "dropout": config.lora_dropout,
                    "targets": list(config.lora_targets),
                },
                "hub_base_model": base.base_model,
                "serve": f"vllm serve {base.base_model} --enable-lora --lora-modules explainer=<this folder>",
            },
        )


def _tokenizer(settings: Settings, config: ExplainerConfig) -> Any:
    from transformers import AutoTokenizer

    folder, _ = prepared_base(settings, config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _counter(tokenizer: Any) -> Any:
    return lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)


def encode_examples(tokenizer: Any, examples: list[Example], max_length: int) -> tuple[dict[str, list], int]:
    """Chat-template prompt + answer + end-of-turn; labels mask the prompt (-100) so only the answer is
    learned. Examples over ``max_length`` tokens are dropped (counted), never cut (a cut answer teaches the
    model to stop mid-sentence)."""
    rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    dropped = 0
    for example in examples:
        prompt = tokenizer.apply_chat_template(
            messages(example.sheet), tokenize=False, add_generation_prompt=True
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
        answer = tokenizer(example.reference, add_special_tokens=False).input_ids
        answer_ids = [*answer, tokenizer.eos_token_id]
        ids = prompt_ids + answer_ids
        if len(ids) > max_length:
            dropped += 1
            continue
        rows["input_ids"].append(ids)
        rows["attention_mask"].append([1] * len(ids))
        rows["labels"].append([-100] * len(prompt_ids) + answer_ids)
    return rows, dropped


def validate(
    peft_model: Any,
    tokenizer: Any,
    examples: list[Example],
    checker: FaithfulnessChecker,
    config: ExplainerConfig,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Base (adapter disabled) vs adapter on the held-out sheets: faithfulness, validity, ROUGE-L, length."""
    from rouge_score import rouge_scorer

    from tools.explain.backends import LocalBackend
    from tools.explain.generator import trim_to_budget

    backend = LocalBackend(
        peft_model, tokenizer, name="explainer", languages=config.languages, batch_size=config.eval_batch_size
    )
    conversations = [messages(e.sheet) for e in examples]
    with peft_model.disable_adapter():
        base_out = backend.generate(conversations, max_new_tokens=config.max_tokens)
    adapter_out = backend.generate(conversations, max_new_tokens=config.max_tokens)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    metrics: dict[str, Any] = {"validation_sheets": len(examples)}
    samples: list[dict[str, Any]] = [
        {"sheet": e.sheet.render(), "reference": e.reference, "reference_source": e.source} for e in examples
    ]
    for who, outputs in (("base", base_out), ("adapter", adapter_out)):
        faithful = valid = 0
        rouge: list[float] = []
        tokens: list[int] = []
        for example, raw, sample in zip(examples, outputs, samples, strict=True):
            text = trim_to_budget(raw, checker.count_tokens, config.max_tokens)
            verdict = checker.check(text, example.sheet)
            faithful += verdict.faithful
            valid += verdict.ok
            rouge.append(scorer.score(example.reference, text)["rougeL"].fmeasure)
            tokens.append(verdict.tokens)
            sample[who] = {
                "text": text,
                "faithful": verdict.faithful,
                "ok": verdict.ok,
                "reasons": verdict.reasons,
            }
        n = max(1, len(examples))
        metrics[f"{who}_faithful_rate"] = round(faithful / n, 4)
        metrics[f"{who}_valid_rate"] = round(valid / n, 4)
        metrics[f"{who}_template_fallback_rate"] = round(1 - valid / n, 4)
        metrics[f"{who}_rougeL"] = round(sum(rouge) / n, 4)
        metrics[f"{who}_avg_tokens"] = round(sum(tokens) / n, 1)
    return metrics, samples
