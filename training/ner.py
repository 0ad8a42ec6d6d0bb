"""Stage ``ner``: a skill-mention tagger (token classification on multilingual e5-small) from weak labels.

Training data (``build_ner_data``): EN + DE course titles and descriptions, weakly labeled by the production
phrase matcher (``training.weak_labels``: ESCO label matches, frequency cutoff, conflict resolution), cut into
segments; every segment with a mention plus a seeded ``negative_ratio`` of segments without one. Courses are
split (seeded hash) into train and held-out; nothing of a held-out course is trained on. Hand annotations
(``annotations``: Prodigy / Label Studio / doccano exports, ``training.annotation``) replace the weak labels
of their courses; ``annotation_holdout`` of them are kept for evaluation.

Model: ``AutoModelForTokenClassification`` over ``multilingual-e5-small-torch`` from the registry, tags
``O``/``B-SKILL``/``I-SKILL`` on each word's first sub-token (the others are ignored by the loss), HF
``Trainer`` with checkpoints under the work dir (resumable) and the stage's time budget. The word
embeddings (250k × 384, 80 % of the weights) stay frozen on the cpu profile: a third of the step time.

Metrics, named for what they measure:

* ``weak_span_*`` — span P/R/F1 (seqeval) on held-out courses' segments **against the weak labels**: agreement
  with the rule the model learned from, not accuracy;
* ``course_{ner,phrase,union}_*`` — course-level micro P/R/F1 of the skills each extractor finds (confidence
  ≥ 0.5, as ``load_course_skills`` uses them) on held-out courses **against the skills their catalog states**
  (coachable's ESCO URIs, Coursera/Udemy skill tags linked exactly: ``SourceExtractor``), which no phrase rule
  produced — the downstream A/B of the NER extractor against the phrase extractor;
* ``hand_span_*`` / ``hand_rule_span_*`` — span P/R/F1 of the model and of the weak rule against held-out
  hand annotations, when annotation files are configured.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator
from rich.console import Console

from craft.settings import Settings
from knowledge.course_skills import DEFAULT_MIN_CONFIDENCE, PhraseExtractor, SourceExtractor
from knowledge.models import resolve
from knowledge.ner_extractor import TAGS, NerExtractor, NerTagger, tags_to_spans
from knowledge.store import get_knowledge
from training.annotation import read_annotations
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
from training.weak_labels import (
    CatalogText,
    Segment,
    WeakLabeler,
    capitalized_norms,
    catalog_texts,
    held_out,
    sample,
    to_segments,
)

LABEL2ID = {tag: i for i, tag in enumerate(TAGS)}


class NerConfig(StageConfig):
    """Tagger hyper-parameters; the field defaults are the ``cpu`` profile (the shipped model)."""

    PROFILE_DEFAULTS = {  # noqa: RUF012 - ClassVar declared on StageConfig
        "tiny": {
            "max_courses": 150,
            "max_length": 64,
            "max_words": 24,
            "train_segments": 12,
            "validation_segments": 8,
            "validation_courses": 3,
            "epochs": 1.0,
            "batch_size": 8,
            "eval_batch_size": 16,
            "learning_rate": 1e-4,
            "save_steps": 1000,
            "time_budget_s": 120,
            "base_model": "multilingual-e5-small-torch",  # CI trains no MLM model first
        },
        "cpu": {},
        "full": {
            "epochs": 4.0,
            "batch_size": 32,
            "eval_batch_size": 128,
            "bf16": True,
            "freeze_embeddings": False,
            "train_segments": None,
            "validation_segments": None,
            "validation_courses": None,
            "negative_ratio": 0.5,
            "save_steps": 500,
            "time_budget_s": None,
        },
    }

    base_model: str = Field(
        "mlm",
        description="Registry name of the encoder: the domain-pretrained e5 (`craft train mlm`, which "
        "`craft train all` trains first). For tagging it beats plain e5, course-level F1 0.278 vs 0.268 "
        "(paired bootstrap over 108 held-out courses, 95 % CI of the gain [0.002, 0.020]), though MLM "
        "hurts e5's sentence embeddings.",
    )
    languages: tuple[str, ...] = Field(
        ("en", "de"), description="Course languages (ESCO has EN + DE labels)."
    )
    max_courses: int | None = Field(None, ge=10, description="Seeded sample of the catalog; None = all.")
    max_length: int = Field(128, ge=16, le=512, description="Sub-tokens per segment (the rest is cut).")
    max_words: int = Field(48, ge=4, description="Words per segment; longer sentences become windows.")
    min_words: int = Field(3, ge=1, description="Description segments with fewer words are dropped.")
    max_one_word_df: float = Field(
        0.05, gt=0, le=1, description="One-word labels matched in more descriptions are not weak labels."
    )
    negative_ratio: float = Field(0.25, ge=0, description="Segments without a mention per one with.")
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="Share of courses held out.")
    train_segments: int | None = Field(None, ge=1, description="Cap on positive training segments.")
    validation_segments: int | None = Field(1000, ge=1, description="Cap on held-out weak segments.")
    validation_courses: int | None = Field(250, ge=1, description="Cap on held-out courses (course level).")
    freeze_embeddings: bool = Field(True, description="Keep the 96M word-embedding weights fixed.")
    annotations: tuple[str, ...] = Field((), description="Hand annotation exports to train / evaluate on.")
    annotation_holdout: float = Field(0.5, ge=0, le=1, description="Share of hand annotations held out.")
    eval_batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    epochs: float = Field(3.0, gt=0)
    time_budget_s: float | None = Field(
        2100, gt=0, description="Stop training after this many seconds (cpu: 35 of the 45 min)."
    )

    @field_validator("annotations")
    @classmethod
    def _files_exist(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        missing = [name for name in value if not Path(name).is_file()]
        if missing:
            raise ValueError(f"annotation file(s) not found: {', '.join(missing)}")
        return value


@dataclass
class NerData:
    """Segments to train and evaluate on, and the held-out courses for the course-level comparison."""

    train: list[Segment]
    validation: list[Segment]
    hand_validation: list[Segment]
    hand_texts: list[tuple[str, list[tuple[int, int]]]]
    courses: list[CatalogText]
    gold: dict[str, set[str]]
    generic: dict[str, float]
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        def count(items: list[Segment]) -> dict[str, int]:
            return {
                "segments": len(items),
                "positive": sum(s.positive for s in items),
                "spans": sum(len(tags_to_spans(s.tags)) for s in items),
            }

        return {
            **self.stats,
            "train": count(self.train),
            "train_hand": sum(s.origin == "hand" for s in self.train),
            "validation": count(self.validation),
            "hand_validation": count(self.hand_validation),
            "course_eval_courses": len(self.courses),
            "course_eval_gold_skills": sum(len(v) for v in self.gold.values()),
            "course_eval_sources": dict(Counter(c.source for c in self.courses)),
            "generic_one_word_labels": self.generic,
        }


def _hand_segments(
    config: NerConfig,
) -> tuple[list[Segment], list[Segment], list[tuple[str, list[tuple[int, int]]]], set[str], list[str]]:
    """Train / held-out segments of the configured hand annotations, the held-out texts with their spans,
    the annotated course ids, and the files' content hashes. A malformed record fails the run."""
    train: list[Segment] = []
    held: list[Segment] = []
    texts: list[tuple[str, list[tuple[int, int]]]] = []
    courses: set[str] = set()
    hashes: list[str] = []
    for name in config.annotations:
        path = Path(name)
        imported = read_annotations(path)
        imported.raise_for_issues()
        hashes.append(hashlib.sha256(path.read_bytes()).hexdigest())
        for note in imported.annotations:
            key = note.course_id or hashlib.sha1(note.text.encode()).hexdigest()
            item = CatalogText(note.course_id or key, note.source or "hand", "", "", note.text)
            spans = note.skill_spans()
            segments = to_segments(
                item, "text", spans, max_words=config.max_words, min_words=1, origin="hand", text=note.text
            )
            if note.course_id:
                courses.add(note.course_id)
            if held_out(key, config.annotation_holdout, config.seed):
                held += segments
                texts.append((note.text, spans))
            else:
                train += segments
    return train, held, texts, courses, hashes


def build_ner_data(settings: Settings, config: NerConfig) -> tuple[NerData, str]:
    """Weak-labeled (and hand-labeled) segments, split by course; returns the data and its hash."""
    kb = get_knowledge(settings)
    texts = catalog_texts(kb, config.languages)
    if config.max_courses is not None and config.max_courses < len(texts):
        rng = np.random.default_rng(config.seed)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), config.max_courses, replace=False).tolist())]
    if not texts:
        raise ValueError(f"no described course in {', '.join(config.languages)} to label")
    phrase = PhraseExtractor.from_kb(kb)
    labeler = WeakLabeler.fit(
        phrase, texts, max_one_word_df=config.max_one_word_df, names=capitalized_norms(kb.labels)
    )
    hand_train, hand_held, hand_texts, hand_courses, hand_hashes = _hand_segments(config)

    pools: dict[str, dict[bool, list[Segment]]] = {
        "train": {True: [], False: []},
        "held": {True: [], False: []},
    }
    held_courses: list[CatalogText] = []
    for item in texts:
        if item.course_id in hand_courses:
            continue  # its hand labels replace the weak ones
        split = "held" if held_out(item.course_id, config.validation_fraction, config.seed) else "train"
        if split == "held":
            held_courses.append(item)
        for field_name, text in (("title", item.title), ("text", item.text)):
            spans = [(s, e) for s, e, _ in labeler.spans(text, field_name)]
            for seg in to_segments(
                item, field_name, spans, max_words=config.max_words, min_words=config.min_words
            ):
                pools[split][seg.positive].append(seg)

    rng = np.random.default_rng(config.seed)

    def draw(split: str, cap: int | None) -> list[Segment]:
        positives = sample(pools[split][True], cap, rng)
        negatives = sample(pools[split][False], round(config.negative_ratio * len(positives)), rng)
        return positives + negatives

    train = draw("train", config.train_segments) + hand_train
    validation = draw("held", config.validation_segments)
    train = [train[i] for i in rng.permutation(len(train)).tolist()]

    source = SourceExtractor.from_kb(kb)
    gold: dict[str, set[str]] = {}
    for item in held_courses:
        found = {e.skill_uri for e in source.extract(item.course_id, item.title, item.text, item.lang)}
        if found:
            gold[item.course_id] = found
    eval_courses = [c for c in held_courses if c.course_id in gold]
    if config.validation_courses is not None and len(eval_courses) > config.validation_courses:
        keep = rng.choice(len(eval_courses), config.validation_courses, replace=False).tolist()
        eval_courses = [eval_courses[i] for i in sorted(keep)]
    gold = {c.course_id: gold[c.course_id] for c in eval_courses}
    stats = {
        "catalog_courses": len(texts),
        "held_out_courses": len(held_courses),
        "weak_pool": {
            split: {"positive": len(p[True]), "negative": len(p[False])} for split, p in pools.items()
        },
        "annotation_files": len(config.annotations),
    }
    data = NerData(train, validation, hand_held, hand_texts, eval_courses, gold, labeler.generic, stats)
    data_hash = digest(
        {
            "train": [(s.course_id, s.field, s.words, s.tags) for s in train],
            "validation": [(s.course_id, s.field, s.words, s.tags) for s in validation],
            "hand": hand_hashes,
            "gold": {k: sorted(v) for k, v in sorted(gold.items())},
            "labeler": phrase.version,
        }
    )
    return data, data_hash


def encode(tokenizer: Any, segments: list[Segment], max_length: int) -> dict[str, list[Any]]:
    """Sub-token ids and labels: each word's tag on its first sub-token, -100 (ignored) elsewhere."""
    encoded = tokenizer(
        [list(s.words) for s in segments], is_split_into_words=True, truncation=True, max_length=max_length
    )
    labels: list[list[int]] = []
    for row, seg in enumerate(segments):
        previous: int | None = None
        row_labels = []
        for word in encoded.word_ids(row):
            row_labels.append(-100 if word is None or word == previous else LABEL2ID[seg.tags[word]])
            previous = word
        labels.append(row_labels)
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": labels}


def span_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """seqeval span precision / recall / F1 (exact span boundaries)."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    if not gold:
        return {}
    return {
        "precision": round(float(precision_score(gold, predicted, zero_division=0)), 4),
        "recall": round(float(recall_score(gold, predicted, zero_division=0)), 4),
        "f1": round(float(f1_score(gold, predicted, zero_division=0)), 4),
    }


def course_scores(gold: dict[str, set[str]], found: dict[str, set[str]]) -> dict[str, float]:
    """Micro precision / recall / F1 of (course, skill) pairs."""
    hits = sum(len(found.get(c, set()) & g) for c, g in gold.items())
    predicted = sum(len(found.get(c, set())) for c in gold)
    relevant = sum(len(g) for g in gold.values())
    precision = hits / predicted if predicted else 0.0
    recall = hits / relevant if relevant else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def evaluate(
    tagger: NerTagger,
    data: NerData,
    settings: Settings,
    *,
    model_name: str,
    labeler: WeakLabeler | None = None,
) -> dict[str, Any]:
    """The three evaluations of the module docstring, on the held-out data only."""
    kb = get_knowledge(settings)
    metrics: dict[str, Any] = {}
    predicted = [[t for t, _ in tags] for tags in tagger.tag_words([s.words for s in data.validation])]
    for name, value in span_scores([list(s.tags) for s in data.validation], predicted).items():
        metrics[f"weak_span_{name}"] = value
    novel = total = 0
    for seg, tags in zip(data.validation, predicted, strict=True):
        weak = tags_to_spans(seg.tags)
        for start, stop in tags_to_spans(tags):
            total += 1
            novel += not any(start < e and stop > s for s, e in weak)
    metrics["weak_span_novel_share"] = round(novel / total, 4) if total else 0.0
    metrics["weak_span_segments"] = len(data.validation)

    if data.hand_validation:
        hand_predicted = [
            [t for t, _ in x] for x in tagger.tag_words([s.words for s in data.hand_validation])
        ]
        hand_gold = [list(s.tags) for s in data.hand_validation]
        for name, value in span_scores(hand_gold, hand_predicted).items():
            metrics[f"hand_span_{name}"] = value
        if labeler is not None:
            rule = []
            for text, _ in data.hand_texts:
                item = CatalogText("", "", "", "", text)
                spans = [(s, e) for s, e, _ in labeler.spans(text, "text")]
                rule += to_segments(item, "text", spans, max_words=tagger.max_words, min_words=1, text=text)
            for name, value in span_scores(hand_gold, [list(s.tags) for s in rule]).items():
                metrics[f"hand_rule_span_{name}"] = value
        metrics["hand_span_segments"] = len(data.hand_validation)

    if data.courses:
        from knowledge.course_skills import CourseText

        ner = NerExtractor(tagger, kb.labels, model_name=model_name)
        phrase = PhraseExtractor.from_kb(kb)
        items = [CourseText(c.course_id, c.title, c.text, c.lang) for c in data.courses]
        ner.prefetch(items)
        found: dict[str, dict[str, set[str]]] = {"ner": {}, "phrase": {}}
        for item in items:
            for key, extractor in (("ner", ner), ("phrase", phrase)):
                evidence = extractor.extract(item.course_id, item.title, item.text, item.lang)
                found[key][item.course_id] = {
                    e.skill_uri for e in evidence if e.confidence >= DEFAULT_MIN_CONFIDENCE
                }
        found["union"] = {c: found["ner"][c] | found["phrase"][c] for c in found["ner"]}
        for key, sets in found.items():
            for name, value in course_scores(data.gold, sets).items():
                metrics[f"course_{key}_{name}"] = value
        metrics["course_eval_courses"] = len(data.courses)
    return metrics


@register
class NerStage(Stage):
    """Skill-mention tagger (multilingual e5-small token classification) from weak ESCO labels."""

    name = "ner"
    role = "ner"
    config_class = NerConfig
    headline = ("course_ner_f1", "course_phrase_f1", "weak_span_f1")

    def _base_identity(self, settings: Settings, config: StageConfig) -> str:
        assert isinstance(config, NerConfig)
        _, manifest = resolve(settings, config.base_model)
        return f"{manifest.name}|{manifest.source}"

    def _data(self, settings: Settings, config: StageConfig) -> TrainingData:
        assert isinstance(config, NerConfig)
        data, data_hash = build_ner_data(settings, config)
        if not any(s.positive for s in data.train):
            raise ValueError("no training segment with a skill mention: check the languages and the catalog")
        return TrainingData(hash=data_hash, summary=data.summary(), payload=data)

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
        assert isinstance(config, NerConfig)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from datasets import Dataset
        from transformers import (
            AutoModelForTokenClassification,
            AutoTokenizer,
            DataCollatorForTokenClassification,
            Trainer,
            TrainingArguments,
        )

        ner: NerData = data.payload
        folder, base = resolve(settings, config.base_model)
        cuda, bf16 = accelerator(config, console)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForTokenClassification.from_pretrained(
            str(folder),
            num_labels=len(TAGS),
            id2label=dict(enumerate(TAGS)),
            label2id=LABEL2ID,
            local_files_only=True,
        )
        if config.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        features = encode(tokenizer, ner.train, config.max_length)
        features["length"] = [len(ids) for ids in features["input_ids"]]
        train = Dataset.from_dict(features)
        checkpoints = work / "checkpoints"
        args = TrainingArguments(
            **trainer_arguments(config, checkpoints, cuda=cuda, bf16=bf16),
            train_sampling_strategy="group_by_length",  # less padding: segments vary from 3 to 48 words
        )
        budget = time_budget(config.time_budget_s)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            data_collator=DataCollatorForTokenClassification(tokenizer),
            processing_class=tokenizer,
            callbacks=[budget],
        )
        resume = last_checkpoint(checkpoints, console, self.name)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))

        console.print(
            f"{self.name}: evaluating on {len(ner.validation)} held-out segments, "
            f"{len(ner.courses)} held-out courses…"
        )
        tick = time.perf_counter()
        tagger = NerTagger(
            model,
            tokenizer,
            max_length=config.max_length,
            max_words=config.max_words,
            batch_size=config.eval_batch_size,
        )
        labeler = None
        if ner.hand_validation:
            kb = get_knowledge(settings)
            labeler = WeakLabeler(PhraseExtractor.from_kb(kb), ner.generic)
        metrics = evaluate(tagger, ner, settings, model_name=out.name.removesuffix(".tmp"), labeler=labeler)
        metrics.update(
            {
                "train_seconds": round(train_seconds, 1),
                "validation_seconds": round(time.perf_counter() - tick, 1),
                "train_steps": int(trainer.state.global_step),
                "max_steps": int(trainer.state.max_steps),
                "train_loss": round(float(output.training_loss), 4),
                "stopped_by_time_budget": budget.stopped,
                "resumed_from": Path(resume).name if resume else None,
                "device": "cuda" if cuda else "cpu",
                "torch_threads": torch.get_num_threads(),
                "bf16": bf16,
            }
        )
        console.print(
            f"{self.name}: held-out span F1 vs weak labels {metrics.get('weak_span_f1', 0):.3f}; "
            f"course-level F1 vs catalog skills: NER {metrics.get('course_ner_f1', 0):.3f}, "
            f"phrase {metrics.get('course_phrase_f1', 0):.3f}; {train_seconds:.0f}s training"
        )
        return TrainResult(
            format="hf-token-classification",
            base_model=base.name,
            base_source=base.source,
            languages=[lang for lang in config.languages if lang in base.languages] or list(base.languages),
            metrics=metrics,
            config={
                "tags": list(TAGS),
                "metric_notes": {
                    "weak_span": "held-out courses, agreement with the weak-label rule (not accuracy)",
                    "course": "held-out courses, skills found (confidence >= 0.5) vs catalog-stated skills",
                    "hand_span": "held-out hand annotations (when configured)",
                },
            },
        )
