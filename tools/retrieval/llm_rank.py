"""Pointwise LLM re-ranking (TALLRec-style): a small instruction model answers "Yes"/"No" per course.

Why pointwise: CRAFT ranks with pairwise prompts ("which course is better, first or second?"), which costs
``n·log2 n`` forward passes per query (87 for 20 candidates) and inherits the model's position bias (the
untrained SmolLM2 answers "First" to every pairwise prompt). Here every candidate is scored on its own by
``P(Yes)`` — the softmax over the two answer-token logits at the assistant turn's first position — and all
candidates of a query go through the model together: ``1 + ceil(n / batch)`` forward passes.

Why the prompt is split into a prefix and suffixes: the system turn, the person (occupation, missing skills,
essential first) and the question are the same for every candidate, so they are run once and their KV cache
is shared by the whole batch; each candidate only adds its course (title and the start of its description,
cut to a token budget) and the assistant turn's opening. The question sits before the course, in the shared
prefix, so it is paid for once per query. With the cpu profile's budgets (an ≈ 85-token prefix, ≈ 46-token
suffixes) 20 candidates cost ≈ 1,000 tokens instead of ≈ 2,600 (−60%), about twice as fast. Training
(``craft train llm-ranker``) builds its inputs with the same ``PointwiseScorer.encode``, so training and
serving see the same tokens.

Models come from the registry: ``resolve(settings, "llm-ranker")`` names a LoRA adapter folder (standard peft
format: ``adapter_config.json`` + ``adapter_model.safetensors``, servable by vLLM ``--enable-lora``) whose
manifest names the base model, loaded through the registry too. The untrained base model scores the same way
(the calibration baseline).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from craft.settings import Settings, get_settings
from knowledge.models import ModelManifest, ModelMissing, prepared_base, resolve
from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.rerank import TopKReranker, blend, blend_alpha

if TYPE_CHECKING:
    import torch

LLM_RANKER = "llm-ranker"
BASE_LLM = "SmolLM2-135M-Instruct"
FORMAT = "peft-lora"
DEFAULT_DEPTH = 20
SKILL_TOKENS = 40
COURSE_TOKENS = 40
BATCH_SIZE = 20
SYSTEM = "You are a careers advisor. You judge whether a training course teaches what a person is missing."
QUESTION = "Would this course help this person reach this occupation? Answer Yes or No."
ANSWERS = ("Yes", "No")
_SLOTS = ("\x00occupation\x00", "\x00skills\x00", "\x00course\x00")


class LLMRankerMissing(ModelMissing):
    """No trained LLM ranker (or no base model for it) in the registry: the message says what to run."""


def person_of(query: RetrievalQuery) -> tuple[str, list[str]]:
    """The occupation and its missing skills, essential first (the order ``build_query`` gives the gap)."""
    skills = list(dict.fromkeys(g.label for g in sorted(query.gap, key=lambda g: not g.essential) if g.label))
    return query.occupation_label or query.text, skills


def pairwise_passes(n: int) -> int:
    """Forward passes of a pairwise (comparison-sort) LLM ranker: one prompt per comparison, ``n·log2 n``."""
    return math.ceil(n * math.log2(n)) if n > 1 else 0


def pointwise_passes(n: int, batch_size: int = BATCH_SIZE, *, shared_prefix: bool = True) -> int:
    """Forward passes here: the prefix once (when shared), then the candidates in batches."""
    if n <= 0:
        return 0
    return int(shared_prefix) + math.ceil(n / batch_size)


@dataclass
class ScoringStats:
    """What scoring cost so far: queries, candidates, forward passes and tokens run through the model."""

    queries: int = 0
    candidates: int = 0
    forward_passes: int = 0
    tokens: int = 0
    tokens_unshared: int = 0  # what one full prompt per candidate would have run
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Per-query averages, with the pairwise method's passes for the same candidate count."""
        if not self.queries:
            return {"queries": 0}
        per_query = self.candidates / self.queries
        return {
            "queries": self.queries,
            "candidates_per_query": round(per_query, 2),
            "forward_passes_per_query": round(self.forward_passes / self.queries, 2),
            "pairwise_forward_passes_per_query": pairwise_passes(round(per_query)),
            "tokens_per_query": round(self.tokens / self.queries, 1),
            "tokens_per_query_unshared": round(self.tokens_unshared / self.queries, 1),
            "shared_prefix_token_saving": round(1 - self.tokens / self.tokens_unshared, 3)
            if self.tokens_unshared
            else 0.0,
            "seconds_per_query": round(self.seconds / self.queries, 3),
        }


class PointwiseScorer:
    """``P(Yes)`` per (person, course) from a causal LM; the person's prompt prefix is shared by the batch.

    ``model`` is a transformers causal LM (a merged LoRA model, the plain base model, or a peft model's
    ``get_base_model()``); ``tokenizer`` is the base model's, with its chat template.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        skill_tokens: int = SKILL_TOKENS,
        course_tokens: int = COURSE_TOKENS,
        batch_size: int = BATCH_SIZE,
        share_prefix: bool = True,
    ) -> None:
        if skill_tokens < 1 or course_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"skill_tokens, course_tokens and batch_size must be ≥ 1, got "
                f"{skill_tokens}, {course_tokens}, {batch_size}"
            )
        self.model, self.tokenizer = model, tokenizer
        self.skill_tokens, self.course_tokens, self.batch_size = skill_tokens, course_tokens, batch_size
        self.share_prefix = share_prefix
        self.answer_ids = answer_token_ids(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        head, tail = _template_parts(tokenizer)
        self._head, self._tail_ids = head, tokenizer.encode(tail, add_special_tokens=False)
        self.stats = ScoringStats()

    # --- prompt --------------------------------------------------------------------------------------
    def prefix_ids(self, occupation: str, skills: Sequence[str]) -> list[int]:
        """System turn, the person and the question, up to ``Course:``; skills cut to the token budget."""
        if not occupation.strip():
            raise ValueError("the LLM ranker needs an occupation (label or query text) to judge courses for")
        kept = _fit_skills(self.tokenizer, skills, self.skill_tokens)
        missing = ", ".join(kept) if kept else "none listed"
        text = self._head.replace(_SLOTS[0], occupation.strip()).replace(_SLOTS[1], missing)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def suffix_ids(self, course: str) -> list[int]:
        """The course (title, then the description's start) cut to ``course_tokens``, then the answer turn."""
        text = " " + " ".join(course.split())
        return self.tokenizer.encode(text, add_special_tokens=False)[: self.course_tokens] + self._tail_ids

    def encode(self, occupation: str, skills: Sequence[str], course: str) -> list[int]:
        """The whole prompt of one candidate: what training sees and the naive scorer runs."""
        return self.prefix_ids(occupation, skills) + self.suffix_ids(course)

    # --- scoring -------------------------------------------------------------------------------------
    def score_query(self, query: RetrievalQuery, courses: Sequence[str]) -> np.ndarray:
        occupation, skills = person_of(query)
        return self.score(occupation, skills, courses)

    def score(self, occupation: str, skills: Sequence[str], courses: Sequence[str]) -> np.ndarray:
        """``P(Yes)`` per course (shared prefix unless ``share_prefix`` is off)."""
        return _sigmoid(self.margins(occupation, skills, courses))

    def margins(self, occupation: str, skills: Sequence[str], courses: Sequence[str]) -> np.ndarray:
        """``logit(Yes) − logit(No)`` per course; its sigmoid is the two-way softmax ``P(Yes)``."""
        if not courses:
            return np.zeros(0)
        import torch

        started = time.perf_counter()
        prefix = self.prefix_ids(occupation, skills)
        suffixes = [self.suffix_ids(c) for c in courses]
        with torch.inference_mode():
            if self.share_prefix:
                out = self._shared(prefix, suffixes)
            else:
                out = self._naive([prefix + s for s in suffixes])
        seconds = time.perf_counter() - started
        stats = self.stats
        stats.queries += 1
        stats.candidates += len(courses)
        stats.forward_passes += pointwise_passes(
            len(courses), self.batch_size, shared_prefix=self.share_prefix
        )
        unshared = sum(len(prefix) + len(s) for s in suffixes)
        stats.tokens += (len(prefix) + sum(map(len, suffixes))) if self.share_prefix else unshared
        stats.tokens_unshared += unshared
        stats.seconds += seconds
        return out

    def _shared(self, prefix: list[int], suffixes: list[list[int]]) -> np.ndarray:
        import torch
        from transformers import DynamicCache

        device = self._device()
        decoder = self.model.get_decoder()
        cached = decoder(input_ids=torch.tensor([prefix], device=device), use_cache=True).past_key_values
        layers = [(layer.keys, layer.values) for layer in cached.layers]
        margins = []
        for batch in _chunks(suffixes, self.batch_size):
            n = len(batch)
            ids, mask, lengths = self._pad(batch, device)
            cache = DynamicCache(
                [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in layers],
                config=self.model.config,
            )
            full_mask = torch.cat([torch.ones(n, len(prefix), dtype=mask.dtype, device=device), mask], dim=1)
            positions = torch.arange(len(prefix), len(prefix) + ids.shape[1], device=device).expand(n, -1)
            hidden = decoder(
                input_ids=ids,
                attention_mask=full_mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
            ).last_hidden_state
            margins.append(self._margin(hidden, lengths))
        return np.concatenate(margins)

    def _naive(self, prompts: list[list[int]]) -> np.ndarray:
        device = self._device()
        decoder = self.model.get_decoder()
        margins = []
        for batch in _chunks(prompts, self.batch_size):
            ids, mask, lengths = self._pad(batch, device)
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            margins.append(self._margin(hidden, lengths))
        return np.concatenate(margins)

    def _pad(self, rows: list[list[int]], device: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ids, their attention mask and each row's length (its last real token + 1)."""
        import torch

        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return ids.to(device), mask.to(device), torch.tensor([len(r) for r in rows], device=device)

    def _margin(self, hidden: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
        """Only the two answer rows of the LM head, at each row's last real token: no vocabulary-wide head."""
        import torch

        last = hidden[torch.arange(hidden.shape[0], device=hidden.device), lengths - 1]
        weight = self.model.get_output_embeddings().weight[list(self.answer_ids)]
        logits = last.float() @ weight.float().T
        return (logits[:, 0] - logits[:, 1]).cpu().numpy().astype(np.float64)

    def _device(self) -> Any:
        return next(self.model.parameters()).device


def answer_token_ids(tokenizer: Any) -> tuple[int, int]:
    """The single tokens "Yes" and "No" as the assistant's first word (no leading space after the turn)."""
    ids = []
    for word in ANSWERS:
        tokens = tokenizer.encode(word, add_special_tokens=False)
        if len(tokens) != 1:
            raise ValueError(f"answer {word!r} is not a single token for this tokenizer ({tokens})")
        ids.append(tokens[0])
    return ids[0], ids[1]


def _template_parts(tokenizer: Any) -> tuple[str, str]:
    """The chat template rendered with slots: (prefix with occupation/skills slots, text after the course)."""
    occupation, skills, course = _SLOTS
    user = f"Occupation: {occupation}\nMissing skills: {skills}\n{QUESTION}\nCourse:{course}"
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(rendered, str) or any(rendered.count(slot) != 1 for slot in _SLOTS):
        raise ValueError("the tokenizer's chat template does not render the user turn verbatim")
    head, tail = rendered.split(course)
    return head, tail


def _fit_skills(tokenizer: Any, skills: Sequence[str], budget: int) -> list[str]:
    """The leading skills whose comma-joined text fits ``budget`` tokens (at least the first one, cut)."""
    if not skills:
        return []
    lengths = [
        len(ids) + 1 for ids in tokenizer([" " + s for s in skills], add_special_tokens=False).input_ids
    ]
    kept, used = [], 0
    for skill, n in zip(skills, lengths, strict=True):
        if used + n > budget:
            break
        kept.append(skill)
        used += n
    if not kept:  # a single over-long label: keep its first tokens rather than no skill at all
        kept = [tokenizer.decode(tokenizer.encode(skills[0], add_special_tokens=False)[:budget]).strip()]
    return kept


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class LLMRanker(TopKReranker):
    """Re-ordered by the LLM's yes/no margin, blended with the first-stage score by ``alpha`` (tuned on
    validation by the training stage).

    Scores are ``P(Yes)`` when ``alpha`` is 1, else the blend (z-scores of the margin and first-stage score).
    """

    suffix = "+llm"

    def scores(self, query: RetrievalQuery, hits: list[ScoredCourse], texts: list[str]) -> np.ndarray:
        occupation, skills = person_of(query)
        scorer: PointwiseScorer = self.scorer  # type: ignore[assignment]
        margins = scorer.margins(occupation, skills, texts)
        if self.alpha < 1.0:
            return blend(margins, np.array([h.score for h in hits]), self.alpha)
        return _sigmoid(margins)


def rerank_latency(ranker: LLMRanker, queries: Sequence[RetrievalQuery], *, k: int = 10) -> dict[str, Any]:
    """p50/p95 wall time of ``retrieve`` per query after one untimed warm-up, and what scoring cost.

    For ``craft bench``: the goal is p50 ≤ 1.5 s re-ranking the top 20 on the 2-core CPU.
    """
    if not queries:
        raise ValueError("no queries to time")
    ranker.retrieve(queries[0], k)  # warm-up: lazy loading and first-call allocations are not counted
    ranker.scorer.stats = ScoringStats()
    seconds = []
    for query in queries:
        started = time.perf_counter()
        ranker.retrieve(query, k)
        seconds.append(time.perf_counter() - started)
    ms = np.asarray(seconds) * 1000.0
    return {
        "system": ranker.name,
        "depth": ranker.depth,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "mean_ms": round(float(ms.mean()), 1),
        "scoring": ranker.scorer.stats.summary(),
    }


# --- registry ----------------------------------------------------------------------------------------
def resolve_llm_ranker(settings: Settings, name: str = LLM_RANKER) -> tuple[Path, ModelManifest]:
    """The newest trained adapter's folder and manifest, or ``LLMRankerMissing`` naming the command."""
    try:
        folder, manifest = resolve(settings, name)
    except ModelMissing as error:
        raise LLMRankerMissing(
            f"no trained LLM ranker {name!r} in {settings.model_dir}: run `craft train llm-ranker` first"
        ) from error
    if manifest.format != FORMAT:
        raise LLMRankerMissing(f"model {manifest.name!r} has format {manifest.format!r}, not a {FORMAT}")
    return folder, manifest


def resolve_base(settings: Settings, name: str) -> tuple[Path, ModelManifest]:
    """The base model ``name`` itself (an adapter needs the weights it was trained on), or
    ``LLMRankerMissing``."""
    try:
        return prepared_base(settings, name)
    except ModelMissing as error:
        raise LLMRankerMissing(str(error)) from error


def load_causal_lm(folder: Path, adapter: Path | None = None, *, merge: bool = True) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode; with ``adapter`` the LoRA weights on top (merged: base speed)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, local_files_only=True)
        model = model.merge_and_unload() if merge else model.get_base_model()
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval(), tokenizer


@lru_cache(maxsize=2)
def _load(model_dir: Path, name: str, adapter: bool) -> PointwiseScorer:
    settings = get_settings().model_copy(update={"model_dir": model_dir})
    if not adapter:
        folder, _ = resolve_base(settings, name)
        model, tokenizer = load_causal_lm(folder)
        return PointwiseScorer(model, tokenizer)
    folder, manifest = resolve_llm_ranker(settings, name)
    base_folder, _ = resolve_base(settings, manifest.base_model)
    model, tokenizer = load_causal_lm(base_folder, folder)
    train = manifest.config.get("train", {})
    return PointwiseScorer(
        model,
        tokenizer,
        skill_tokens=train.get("skill_tokens", SKILL_TOKENS),
        course_tokens=train.get("course_tokens", COURSE_TOKENS),
        batch_size=train.get("eval_batch_size", BATCH_SIZE),
    )


def trained_llm_ranker(
    first_stage: Retriever, corpus: CourseCorpus, settings: Settings, name: str = LLM_RANKER
) -> LLMRanker:
    """``first_stage`` re-ranked by the newest trained LLM ranker with its tuned blend weight;
    ``LLMRankerMissing`` when none is trained."""
    _, manifest = resolve_llm_ranker(settings, name)
    scorer = load_llm_scorer(settings, name)
    return LLMRanker(first_stage, corpus, scorer, alpha=blend_alpha(manifest), model_name=manifest.name)


def load_llm_scorer(
    settings: Settings | None = None, name: str = LLM_RANKER, *, adapter: bool = True
) -> PointwiseScorer:
    """The trained ranker's scorer (base + LoRA, merged), or with ``adapter=False`` the base model ``name``.

    One per (model dir, name) per process; ``LLMRankerMissing`` when the model is not in the registry.
    """
    settings = settings or get_settings()
    if adapter:
        resolve_llm_ranker(settings, name)  # fail fast with the clear message, before importing torch
    else:
        resolve_base(settings, name)
    return _load(settings.model_dir.resolve(), name, adapter)
