"""``craft eval --through agent``: the advisor replayed as conversations must rank exactly like its direct
path when both see the same gap (same retriever, same filters, the stated skills understood exactly)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from craft.settings import Settings
from evaluation.harness import run_eval, stated_skills
from knowledge.store import get_knowledge

pytestmark = [pytest.mark.slow, pytest.mark.data]


def test_stated_skills_are_simple_essential_labels(enriched_settings: Settings) -> None:
    kb = get_knowledge(enriched_settings)
    occupation = "http://data.europa.eu/esco/occupation/d3edb8f8-3a06-47a0-8fb9-9b212c006aa2"
    chosen = stated_skills(kb, occupation, 3)
    essential = {s for s, r in kb.occupation_skills[occupation] if r == "essential"}
    assert len(chosen) == 3 and chosen <= essential
    assert all(
        " and " not in kb.skills[s].label("en") and "," not in kb.skills[s].label("en") for s in chosen
    )
    assert stated_skills(kb, occupation, 0) == set()


def test_agent_replay_agrees_with_the_direct_path(agent_settings: Settings, tmp_path: Path) -> None:
    results = run_eval(
        agent_settings,
        "gold",
        "test",
        10,
        ["routed", "agent"],
        tmp_path,
        max_queries=4,
        have_skills=2,
        baseline="routed",
    )
    by_name = {r.name: r for r in results}
    direct, agent = by_name["routed"], by_name["agent"]
    assert agent.beyond["out_of_catalog_rate"] == 0.0
    assert len(direct.per_query) == 4
    assert agent.per_query["ndcg@10"].to_dict() == pytest.approx(
        direct.per_query["ndcg@10"].to_dict(), abs=1e-9
    )
    notes = json.loads((tmp_path / "run.json").read_text())["notes"]
    replay = next(n for n in notes if n.startswith("agent replay"))
    assert "'occupation_missed': 0" in replay and "'skills_differ': 0" in replay
