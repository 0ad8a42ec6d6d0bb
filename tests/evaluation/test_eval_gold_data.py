"""The development gold set against the real catalog snapshot: every judgment must land on a course."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from craft.settings import Settings
from evaluation.baselines import PopularityRetriever, RandomRetriever
from evaluation.metrics import evaluate_run, judged_share_at_k, out_of_catalog_rate
from evaluation.qrels import load_gold
from evaluation.splits import split_occupations
from knowledge.store import get_knowledge
from tools.retrieval.query import build_query


def gold_file() -> Path:
    raw = os.environ.get("CRAFT_GOLD_DIR")
    if raw:
        folder = Path(raw)
    elif os.environ.get("CRAFT_DATA_DIR"):
        folder = Path(os.environ["CRAFT_DATA_DIR"]).parent / "gold"
    else:
        pytest.skip("no gold folder (set CRAFT_GOLD_DIR or CRAFT_DATA_DIR)")
    path = folder / "dev_judgments.jsonl"
    if not path.is_file():
        pytest.skip(f"gold judgments not found at {path}")
    return path


@pytest.mark.data
def test_gold_judgments_all_match_the_real_catalog(real_settings: Settings) -> None:
    kb = get_knowledge(real_settings)
    qrels, report = load_gold(gold_file(), kb.courses)
    assert report.judgments == 274
    assert report.matched == 274, report.summary()
    assert {s: c.matched for s, c in report.per_source.items()} == {
        "coursera": 128,
        "coachable": 73,
        "edx": 56,
        "udemy": 17,
    }
    assert report.by_title == 274 and report.ambiguous_titles == 0 and report.conflicts == 0
    assert report.occupations == 10 and len(qrels.queries()) == 10 and report.qrels_pairs == 274
    assert set(qrels.queries()) <= set(kb.occupations)
    assert {cid for docs in qrels.judgments.values() for cid in docs} <= set(kb.courses.id)

    split = split_occupations(kb.occupations, pinned_test=qrels.queries())
    assert set(qrels.queries()) <= set(split.test)
    assert not set(qrels.queries()) & (set(split.train) | set(split.validation))


@pytest.mark.data
def test_floor_baselines_on_gold(real_settings: Settings) -> None:
    kb = get_knowledge(real_settings)
    qrels, _ = load_gold(gold_file(), kb.courses)
    for retriever in (RandomRetriever(kb, seed=42), PopularityRetriever(kb)):
        run = {
            occ: [(c.course_id, c.score) for c in retriever.retrieve(build_query(kb, occ), k=10)]
            for occ in qrels.queries()
        }
        assert out_of_catalog_rate(run, kb.courses.id) == 0.0
        result = evaluate_run(qrels, run, k=10)
        assert len(result.per_query) == 10 and not result.skipped_no_relevant
        assert result.means["ndcg@10"] < 0.2, retriever.name  # a floor, not a system
        assert 0.0 <= judged_share_at_k(run, qrels) <= 1.0
