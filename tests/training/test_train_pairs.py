"""Training pairs: train side only (never validation, test or gold), labelled by silver, deterministic."""

from __future__ import annotations

import pytest

from craft.settings import Settings
from evaluation.qrels import default_gold_path, load_gold
from knowledge.store import get_knowledge
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.lexical import BM25Retriever
from tools.retrieval.query import build_query
from tools.retrieval.registry import course_retriever
from training.pairs import Leakage, Pair, PairSet, build_pairs, check_no_leakage
from training.reranker import RerankerConfig

pytestmark = pytest.mark.data

CONFIG = RerankerConfig.for_profile(
    "tiny", {"train_queries": 30, "validation_queries": 5, "hard_negatives": 2}
)


@pytest.fixture(scope="module")
def pairs(enriched_settings: Settings) -> PairSet:
    return build_pairs(enriched_settings, CONFIG, progress=False)


def test_train_pairs_come_from_train_occupations_only(enriched_settings: Settings, pairs: PairSet) -> None:
    train = {p.occupation_uri for p in pairs.train}
    validation = {p.occupation_uri for p in pairs.validation}
    assert len(train) == 30 and len(validation) == 5
    assert train <= set(pairs.split.train)
    assert not train & (set(pairs.split.validation) | set(pairs.split.test))
    assert validation <= set(pairs.split.validation)
    gold_path = default_gold_path(enriched_settings)
    if gold_path.is_file():
        kb = get_knowledge(enriched_settings)
        gold, _ = load_gold(gold_path, kb.courses)
        assert set(gold.queries()) <= set(pairs.split.test) and set(pairs.split.pinned_test) == set(
            gold.queries()
        )
        assert not (train | validation) & set(gold.queries())  # gold is never trained or tuned on


def test_labels_follow_silver_and_negatives_are_mined(enriched_settings: Settings, pairs: PairSet) -> None:
    kb = get_knowledge(enriched_settings)
    first = course_retriever(enriched_settings, CourseCorpus.from_knowledge(kb), exact=True)
    by_kind: dict[str, list[Pair]] = {}
    for p in pairs.train:
        by_kind.setdefault(p.kind, []).append(p)
    assert set(by_kind) == {"positive", "hard", "random"}
    assert all(p.grade >= 1 and p.label == p.grade / 2 for p in by_kind["positive"])
    assert all(p.grade == 0 and p.label == 0.0 for p in by_kind["hard"] + by_kind["random"])
    for occ in sorted({p.occupation_uri for p in pairs.train})[:5]:
        mine = [p for p in pairs.train if p.occupation_uri == occ]
        top = {h.course_id for h in first.retrieve(build_query(kb, occ), CONFIG.hard_depth)}
        assert all(p.course_id in top for p in mine if p.kind == "hard")
        assert sum(p.kind == "positive" for p in mine) <= CONFIG.positives
        assert len({p.course_id for p in mine}) == len(mine)  # no course twice for one occupation
    for occ in {p.occupation_uri for p in pairs.validation}:  # validation: the first stage's list, in order
        listed = [(p.course_id, p.first_score) for p in pairs.validation if p.occupation_uri == occ]
        hits = first.retrieve(build_query(kb, occ), CONFIG.validation_depth)
        assert [c for c, _ in listed] == [h.course_id for h in hits]
        assert [s for _, s in listed] == pytest.approx([h.score for h in hits])


def test_bm25_first_stage_is_still_available(enriched_settings: Settings) -> None:
    config = CONFIG.model_copy(update={"first_stage": "bm25", "train_queries": 3, "validation_queries": 2})
    pairs = build_pairs(enriched_settings, config, progress=False)
    kb = get_knowledge(enriched_settings)
    bm25 = BM25Retriever(CourseCorpus.from_knowledge(kb))
    for occ in {p.occupation_uri for p in pairs.validation}:
        listed = [p.course_id for p in pairs.validation if p.occupation_uri == occ]
        assert listed == [h.course_id for h in bm25.retrieve(build_query(kb, occ), config.validation_depth)]
    assert set(pairs.validation_qrels.queries()) == {p.occupation_uri for p in pairs.validation}


def test_pairs_are_deterministic(enriched_settings: Settings, pairs: PairSet) -> None:
    again = build_pairs(enriched_settings, CONFIG, progress=False)
    assert again.train == pairs.train and again.validation == pairs.validation and again.hash == pairs.hash
    reseeded = build_pairs(enriched_settings, CONFIG.model_copy(update={"seed": 7}), progress=False)
    assert reseeded.hash != pairs.hash


def test_leakage_is_refused(pairs: PairSet) -> None:
    test_occupation = pairs.split.test[0]
    leak = Pair(test_occupation, "c", "q", "t", 1, 0.5, "positive")
    with pytest.raises(Leakage, match="non-train occupations"):
        check_no_leakage([*pairs.train, leak], pairs.validation, pairs.split)
    with pytest.raises(Leakage, match="non-validation occupations"):
        check_no_leakage(pairs.train, [*pairs.validation, leak], pairs.split)
