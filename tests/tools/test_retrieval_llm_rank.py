"""The pointwise LLM ranker: the prompt, P(Yes) with a shared prefix equal to one full prompt per candidate,
the forward-pass and token counts, and the re-ranking wrapper (only first-stage candidates, sorted, k)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from craft.settings import Settings, get_settings
from tools.retrieval.base import GapSkill, RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.llm_rank import (
    BASE_LLM,
    LLMRanker,
    LLMRankerMissing,
    PointwiseScorer,
    load_llm_scorer,
    pairwise_passes,
    person_of,
    pointwise_passes,
    rerank_latency,
    resolve_llm_ranker,
)

IDS = [f"c{i}" for i in range(8)]
COURSES = [
    "Statistics for data analysis\nRegression, hypothesis tests and sampling with worked examples in R.",
    "Sourdough baking at home",
    "Machine learning with Python: supervised learning, model evaluation, scikit-learn " * 4,
    "SQL",
    "Project management fundamentals: planning, risk, stakeholders and agile delivery for teams.",
]


@pytest.fixture
def corpus() -> CourseCorpus:
    return CourseCorpus(
        pd.DataFrame(
            {
                "id": IDS,
                "title": [f"title {cid}" for cid in IDS],
                "description": [f"about {cid}" for cid in IDS],
                "raw_skills": [None] * len(IDS),
            }
        )
    )


def _query() -> RetrievalQuery:
    gap = [
        GapSkill(uri="s2", label="bookkeeping", essential=False),
        GapSkill(uri="s1", label="use spreadsheets", essential=True),
        GapSkill(uri="s3", label="use spreadsheets", essential=True),
    ]
    return RetrievalQuery(occupation_uri="o", occupation_label="accountant", gap=gap, text="long text")


class FirstStage(Retriever):
    name = "first"

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.asked: list[int] = []

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        self.asked.append(k)
        return [ScoredCourse(course_id=c, score=1.0 / (i + 1)) for i, c in enumerate(self.ids[:k])]


class Margins:
    """Stands in for ``PointwiseScorer``: a fixed yes/no margin per course title; records each call."""

    def __init__(self, margins: dict[str, float]) -> None:
        self.margins_of = margins
        self.calls: list[tuple[str, list[str], list[str]]] = []

    def margins(self, occupation: str, skills: list[str], courses: list[str]) -> np.ndarray:
        self.calls.append((occupation, list(skills), list(courses)))
        return np.array([self.margins_of.get(c.split("\n")[0].removeprefix("title "), -1.0) for c in courses])


def test_person_is_the_occupation_and_its_gap_essential_first_once() -> None:
    assert person_of(_query()) == ("accountant", ["use spreadsheets", "bookkeeping"])
    assert person_of(RetrievalQuery(text="free text")) == ("free text", [])


def test_pass_counts_pointwise_against_pairwise() -> None:
    assert pairwise_passes(20) == math.ceil(20 * math.log2(20)) == 87
    assert pairwise_passes(1) == 0 and pairwise_passes(2) == 2
    assert pointwise_passes(20, 20) == 2 and pointwise_passes(20, 8) == 4
    assert pointwise_passes(20, 20, shared_prefix=False) == 1 and pointwise_passes(0) == 0


def test_ranker_returns_only_first_stage_candidates_sorted_and_k(corpus: CourseCorpus) -> None:
    first = FirstStage(["c0", "c1", "c2", "c3", "c4"])
    scorer = Margins({"c3": 4.0, "c1": 1.0, "c4": 1.0, "c7": 99.0})  # c7 is not a candidate
    ranker = LLMRanker(first, corpus, scorer, depth=5)  # type: ignore[arg-type]
    hits = ranker.retrieve(_query(), k=3)
    assert [h.course_id for h in hits] == ["c3", "c1", "c4"]  # c1 before c4: a tie keeps first-stage order
    sigmoid = [1 / (1 + math.exp(-m)) for m in (4.0, 1.0, 1.0)]
    assert [h.score for h in hits] == pytest.approx(sigmoid)  # alpha 1: the scores are P(Yes)
    assert first.asked == [5] and ranker.name == "first+llm"
    assert len(scorer.calls) == 1  # one call with every candidate: one prefix, batched suffixes
    occupation, skills, courses = scorer.calls[0]
    assert (occupation, skills) == ("accountant", ["use spreadsheets", "bookkeeping"])
    assert courses == [corpus.texts[corpus.position[c]] for c in ["c0", "c1", "c2", "c3", "c4"]]

    every = ranker.retrieve(_query(), k=10)  # k above depth: the first stage is asked for k
    assert first.asked[-1] == 10 and {h.course_id for h in every} == {"c0", "c1", "c2", "c3", "c4"}

    mostly_first = LLMRanker(first, corpus, scorer, depth=5, alpha=0.1)  # type: ignore[arg-type]
    assert mostly_first.retrieve(_query(), 1)[0].course_id == "c0"
    assert LLMRanker(FirstStage([]), corpus, scorer).retrieve(_query(), 5) == []  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth"):
        LLMRanker(first, corpus, scorer, depth=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        LLMRanker(first, corpus, scorer, alpha=1.5)  # type: ignore[arg-type]


def test_no_trained_llm_ranker_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(model_dir=tmp_path / "models")
    for call in (resolve_llm_ranker, load_llm_scorer):
        with pytest.raises(LLMRankerMissing, match=r"no trained LLM ranker.*craft train llm-ranker"):
            call(settings)
    with pytest.raises(LLMRankerMissing, match="base model"):
        load_llm_scorer(settings, BASE_LLM, adapter=False)


# --- with the real (untrained) SmolLM2 -------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_scorer() -> PointwiseScorer:
    from knowledge.models import prepare

    settings = get_settings()
    prepare(settings, [BASE_LLM])
    return load_llm_scorer(settings, BASE_LLM, adapter=False)


@pytest.mark.slow
def test_prompt_is_the_chat_template_with_a_shared_prefix(base_scorer: PointwiseScorer) -> None:
    tok = base_scorer.tokenizer
    skills = ["statistics", "python programming", "machine learning", "data mining", "data visualisation"]
    prefix = tok.decode(base_scorer.prefix_ids("data scientist", skills))
    assert prefix.startswith("<|im_start|>system\n") and prefix.endswith("Answer Yes or No.\nCourse:")
    assert "<|im_start|>user\nOccupation: data scientist\nMissing skills: statistics, " in prefix
    suffix = base_scorer.suffix_ids(COURSES[2])
    assert tok.decode(suffix).endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert len(suffix) == base_scorer.course_tokens + len(base_scorer._tail_ids)  # the course is cut
    tight = PointwiseScorer(base_scorer.model, tok, skill_tokens=6)
    kept = tok.decode(tight.prefix_ids("data scientist", skills)).split("Missing skills: ")[1].split("\n")[0]
    assert kept == "statistics, python programming"  # whole skills within the budget, essential first
    assert [tok.decode([i]) for i in base_scorer.answer_ids] == ["Yes", "No"]
    with pytest.raises(ValueError, match="occupation"):
        base_scorer.prefix_ids(" ", skills)


@pytest.mark.slow
def test_shared_prefix_scores_equal_full_prompts_and_the_lm_head(base_scorer: PointwiseScorer) -> None:
    import torch

    occupation, skills = "data scientist", ["statistics", "python programming", "machine learning"]
    scorer = PointwiseScorer(base_scorer.model, base_scorer.tokenizer, batch_size=2)  # 3 uneven batches
    shared = scorer.score(occupation, skills, COURSES)
    scorer.share_prefix = False
    naive = scorer.score(occupation, skills, COURSES)
    assert shared.shape == (5,) and np.abs(shared - naive).max() < 1e-3
    with torch.inference_mode():  # the model's own logits over the whole vocabulary, one prompt at a time
        reference = []
        for course in COURSES:
            logits = scorer.model(input_ids=torch.tensor([scorer.encode(occupation, skills, course)])).logits
            yes, no = logits[0, -1, list(scorer.answer_ids)]
            reference.append(float(torch.sigmoid(yes - no)))
    assert np.abs(shared - np.array(reference)).max() < 1e-3

    stats = scorer.stats  # one shared-prefix query, then one naive one
    prefix = len(scorer.prefix_ids(occupation, skills))
    suffixes = sum(len(scorer.suffix_ids(c)) for c in COURSES)
    assert (stats.queries, stats.candidates) == (2, 10)
    assert stats.forward_passes == (1 + 3) + 3
    assert stats.tokens == (prefix + suffixes) + (5 * prefix + suffixes)
    assert stats.tokens_unshared == 2 * (5 * prefix + suffixes)
    summary = stats.summary()
    assert summary["pairwise_forward_passes_per_query"] == pairwise_passes(5) == 12
    assert 0 < summary["shared_prefix_token_saving"] < 1


@pytest.mark.slow
def test_latency_is_measured_after_a_warm_up(base_scorer: PointwiseScorer, corpus: CourseCorpus) -> None:
    ranker = LLMRanker(FirstStage(IDS), corpus, base_scorer, depth=4)
    report = rerank_latency(ranker, [_query(), _query()], k=3)
    assert report["system"] == "first+llm" and report["depth"] == 4
    assert 0 < report["p50_ms"] <= report["p95_ms"]
    assert report["scoring"]["queries"] == 2 and report["scoring"]["forward_passes_per_query"] == 2
    with pytest.raises(ValueError, match="no queries"):
        rerank_latency(ranker, [])
