"""Cross-encoder re-ranking of a first-stage retriever's candidates (the ``reranker`` training stage).

A cross-encoder reads the query and one course together, so it judges relevance better than a bi-encoder or
BM25 but costs one forward pass per pair: it only re-orders the first stage's top ``depth`` (default 20),
scored in one batch, and never adds a course the first stage did not return (filters stay enforced).

The model comes from the registry (``resolve(settings, "reranker")``: the newest ``craft train reranker``
model); the query and course texts are built here and by the training pairs alike, so training and serving
see the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from craft.settings import Settings, get_settings
from knowledge.models import ModelManifest, ModelMissing, resolve
from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus

RERANKER = "reranker"
DEFAULT_DEPTH = 20
FORMAT = "cross-encoder"


class RerankerMissing(ModelMissing):
    """No trained reranker in the registry: the message says how to train one."""


class PairScorer(Protocol):
    """What the re-ranker needs of a model: one relevance score per (query, course) text pair."""

    def predict(
        self, sentences: list[tuple[str, str]], batch_size: int = ..., **kwargs: object
    ) -> np.ndarray: ...


def rerank_query_text(query: RetrievalQuery) -> str:
    """The cross-encoder's side of the query: occupation label, then the gap skills (essential first).

    Compact on purpose: the pair is truncated to the model's max length, and the label and skills are what
    make a course relevant (the occupation description would crowd them out).
    """
    skills = list(dict.fromkeys(g.label for g in query.gap if g.label))
    if query.occupation_label:
        return f"{query.occupation_label}: {', '.join(skills)}" if skills else query.occupation_label
    return query.text


def blend(reranker: np.ndarray, first: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha`` × z(re-ranker) + (1 − ``alpha``) × z(first stage) over one candidate list.

    z-scores put the two scales (cross-encoder logits, summed cosines or BM25) on one footing per query;
    ``alpha`` = 1 is the re-ranker alone, 0 the first-stage order. Constant scores contribute nothing.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")

    def z(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        spread = values.std()
        return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)

    return alpha * z(reranker) + (1.0 - alpha) * z(first)


class TopKReranker(Retriever):
    """``first_stage``'s top ``depth`` re-scored by a model and re-ordered; ties keep the first-stage order.
    Subclasses only score; the first stage's filters stay enforced (no course is added)."""

    suffix = "+rerank"

    def __init__(
        self,
        first_stage: Retriever,
        corpus: CourseCorpus,
        scorer: object,
        *,
        depth: int = DEFAULT_DEPTH,
        alpha: float = 1.0,
        name: str | None = None,
        model_name: str | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        self.first_stage, self.corpus, self.scorer, self.depth = first_stage, corpus, scorer, depth
        self.alpha = alpha
        self.name = name or f"{first_stage.name}{self.suffix}"
        self.model_name = model_name
        """The registry name of the trained model (reports say which one ran)."""

    def scores(self, query: RetrievalQuery, hits: list[ScoredCourse], texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        hits = self.first_stage.retrieve(query, max(self.depth, k))
        if not hits or k <= 0:
            return []
        texts = [self.corpus.texts[self.corpus.position[h.course_id]] for h in hits]
        scores = self.scores(query, hits, texts)
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
        return [ScoredCourse(course_id=hits[i].course_id, score=float(scores[i])) for i in order[:k]]


class CrossEncoderReranker(TopKReranker):
    """Re-scored by a cross-encoder, blended with the first-stage score by ``alpha`` (tuned on validation by
    the training stage)."""

    suffix = "+ce"

    def scores(self, query: RetrievalQuery, hits: list[ScoredCourse], texts: list[str]) -> np.ndarray:
        text = rerank_query_text(query)
        pairs = [(text, course) for course in texts]
        scorer: PairScorer = self.scorer  # type: ignore[assignment]
        scores = np.asarray(scorer.predict(pairs, batch_size=len(pairs)), dtype=np.float64).ravel()
        if self.alpha < 1.0:
            scores = blend(scores, np.array([h.score for h in hits]), self.alpha)
        return scores


def rerank_scores(scorer: PairScorer, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
    """Scores for many pairs (evaluation): batched, no progress bar."""
    if not pairs:
        return np.zeros(0)
    return np.asarray(scorer.predict(list(pairs), batch_size=batch_size), dtype=np.float64).ravel()


def resolve_reranker(settings: Settings, name: str = RERANKER) -> tuple[Path, ModelManifest]:
    """The newest trained reranker's folder and manifest, or ``RerankerMissing`` naming the command."""
    try:
        folder, manifest = resolve(settings, name)
    except ModelMissing as error:
        raise RerankerMissing(
            f"no trained reranker {name!r} in {settings.model_dir}: run `craft train reranker` "
            "(or `make models`) first"
        ) from error
    if manifest.format != FORMAT:
        raise RerankerMissing(f"model {manifest.name!r} has format {manifest.format!r}, not a {FORMAT}")
    return folder, manifest


@lru_cache(maxsize=2)
def _load(model_dir: Path, name: str) -> PairScorer:
    from sentence_transformers import CrossEncoder

    folder, manifest = resolve_reranker(get_settings().model_copy(update={"model_dir": model_dir}), name)
    max_length = manifest.config.get("train", {}).get("max_length")
    return CrossEncoder(str(folder), max_length=max_length, local_files_only=True)  # GPU when there is one


def blend_alpha(manifest: ModelManifest) -> float:
    """The blend weight a re-ranking stage tuned on validation (1.0, the re-ranker alone, if it did not)."""
    return float(manifest.metrics.get("blend_alpha", 1.0))


def trained_cross_encoder(
    first_stage: Retriever, corpus: CourseCorpus, settings: Settings, name: str = RERANKER
) -> CrossEncoderReranker:
    """``first_stage`` re-ranked by the newest trained cross-encoder with its tuned blend weight;
    ``RerankerMissing`` when none is trained."""
    _, manifest = resolve_reranker(settings, name)
    scorer = load_reranker(settings, name)
    return CrossEncoderReranker(
        first_stage, corpus, scorer, alpha=blend_alpha(manifest), model_name=manifest.name
    )


def load_reranker(settings: Settings | None = None, name: str = RERANKER) -> PairScorer:
    """One loaded cross-encoder per (model dir, name) per process; ``RerankerMissing`` if none is trained."""
    settings = settings or get_settings()
    resolve_reranker(settings, name)  # fail fast with the clear message, before importing torch
    return _load(settings.model_dir.resolve(), name)
