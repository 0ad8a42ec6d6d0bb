"""Scripted multi-turn dialogues (``tests/dialogues/*.yaml``), one parametrized test.

Each turn asserts on the state after it (``expect``); every turn also checks the invariants a user relies
on: every course shown is in the catalog and satisfies the active filters, every skill named is in ESCO, a
disliked or taken course never comes back, the skills of a taken course count as known, no known or skipped
skill stays in the gap, the reply is non-empty, in the expected language when given, and never shows the
system prompt.

Keys of ``expect`` (all optional): intent, phase, language, occupation (URI or null), occupation_label,
candidates_min, candidates_max, skills_have (URIs that must be captured), skills_have_labels (substrings
of captured labels), skills_have_absent (URIs), skills_skip (URIs or words), gap_excludes (URIs), gap_min,
courses_min, courses_max, filters (Preferences fields), reply_contains / reply_not_contains (case-
insensitive substrings), coverage (true: a coverage figure is reported), path_min, courses_changed (true:
the list differs from the previous turn's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conversation import Conversation

from agent.prompts import UNDERSTAND_SYSTEM
from agent.state import AdvisorState
from craft.settings import Settings
from knowledge.store import get_knowledge

DIALOGUES = sorted((Path(__file__).parents[1] / "dialogues").glob("*.yaml"))
PROMPT_PROBE = UNDERSTAND_SYSTEM.splitlines()[0][:60]


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data.get("turns"), f"{path.name}: needs a 'turns' list"
    for i, turn in enumerate(data["turns"], 1):
        assert set(turn) <= {"user", "expect"}, f"{path.name} turn {i}: unknown keys {set(turn)}"
    return data


def test_there_are_enough_dialogues() -> None:
    dialogues = [load(p) for p in DIALOGUES]
    assert len(dialogues) >= 25
    assert {d.get("language", "en") for d in dialogues} == {"en", "de"}


def check_invariants(state: AdvisorState, where: str, rejected: set[str]) -> None:
    kb = get_knowledge()
    catalog = set(kb.courses.id)
    rows = kb.courses.set_index("id")
    assert state.reply.strip(), f"{where}: empty reply"
    assert PROMPT_PROBE not in state.reply, f"{where}: the system prompt leaked"
    by_id = {c.course_id: c for c in state.shown}
    prefs = state.preferences
    for cid in state.current:
        assert cid in catalog, f"{where}: course {cid} is not in the catalog"
        assert cid not in rejected, f"{where}: course {cid} came back after a dislike/taken"
        row = rows.loc[cid]
        assert by_id[cid].title == row.title, f"{where}: title of {cid} differs from the catalog"
        if prefs.free_only:
            assert row.free is True or row.free == True, f"{where}: {cid} is not free"  # noqa: E712
        if prefs.languages:
            assert row.language in prefs.languages, f"{where}: {cid} is in {row.language}"
        if prefs.levels:
            assert row.level in prefs.levels, f"{where}: {cid} has level {row.level}"
        if prefs.price_max is not None:
            assert row.free == True or (row.price == row.price and row.price <= prefs.price_max), (  # noqa: E712
                f"{where}: {cid} costs {row.price}"
            )
    skills = [s.uri for s in state.skills_have] + [g.uri for g in state.gap]
    skills += [c.uri for course in state.shown for c in course.covers]
    skills += [s.uri for s in state.skills_skip if s.uri]
    unknown = [u for u in skills if u not in kb.skills]
    assert not unknown, f"{where}: skills not in ESCO: {unknown[:3]}"
    if state.occupation is not None:
        assert state.occupation.uri in kb.occupations, f"{where}: occupation not in ESCO"
    gap = {g.uri for g in state.gap}
    have = {s.uri for s in state.skills_have}
    known = have | {s.uri for s in state.skills_skip if s.uri}
    assert not known & gap, f"{where}: skills the user has or skips are still in the gap: {known & gap}"
    for course in state.shown:
        if course.feedback == "taken":  # what a taken course teaches counts as known
            taught = {c.uri for c in course.covers}
            assert taught <= have, f"{where}: skills of taken {course.course_id} not counted as known"


def check_expect(state: AdvisorState, expect: dict[str, Any], where: str, previous: list[str]) -> None:
    reply = state.reply.casefold()
    for key, want in expect.items():
        if key == "intent":
            assert state.intent == want, f"{where}: intent {state.intent} != {want}"
        elif key == "phase":
            assert state.phase.value == want, f"{where}: phase {state.phase.value} != {want}"
        elif key == "language":
            assert state.language == want, f"{where}: language {state.language} != {want}"
        elif key == "occupation":
            got = state.occupation.uri if state.occupation else None
            assert got == want, f"{where}: occupation {got} != {want}"
        elif key == "occupation_label":
            assert state.occupation and want.casefold() in state.occupation.label.casefold(), (
                f"{where}: occupation {state.occupation} lacks {want!r}"
            )
        elif key == "candidates_min":
            assert len(state.candidates) >= want, f"{where}: {len(state.candidates)} candidates < {want}"
        elif key == "candidates_max":
            assert len(state.candidates) <= want, f"{where}: {len(state.candidates)} candidates > {want}"
        elif key == "skills_have":
            have = {s.uri for s in state.skills_have}
            assert set(want) <= have, f"{where}: missing skills {set(want) - have}"
        elif key == "skills_have_labels":
            labels = " | ".join(s.label.casefold() for s in state.skills_have)
            for label in want:
                assert label.casefold() in labels, f"{where}: no captured skill like {label!r} in {labels}"
        elif key == "skills_have_absent":
            have = {s.uri for s in state.skills_have}
            assert not set(want) & have, f"{where}: unexpected skills {set(want) & have}"
        elif key == "skills_skip":
            skipped = {s.uri for s in state.skills_skip} | {s.wording.casefold() for s in state.skills_skip}
            for item in want:
                assert item.casefold() in skipped or item in skipped, f"{where}: {item} not skipped"
        elif key == "gap_excludes":
            gap = {g.uri for g in state.gap}
            assert not set(want) & gap, f"{where}: {set(want) & gap} still in the gap"
        elif key == "gap_min":
            assert len(state.gap) >= want, f"{where}: gap {len(state.gap)} < {want}"
        elif key == "courses_min":
            assert len(state.current) >= want, f"{where}: {len(state.current)} courses < {want}"
        elif key == "courses_max":
            assert len(state.current) <= want, f"{where}: {len(state.current)} courses > {want}"
        elif key == "filters":
            prefs = state.preferences.model_dump()
            for field, value in want.items():
                assert prefs[field] == value, f"{where}: preference {field}={prefs[field]} != {value}"
        elif key == "reply_contains":
            for text in [want] if isinstance(want, str) else want:
                assert text.casefold() in reply, f"{where}: reply lacks {text!r}: {state.reply[:300]!r}"
        elif key == "reply_not_contains":
            for text in [want] if isinstance(want, str) else want:
                assert text.casefold() not in reply, f"{where}: reply contains {text!r}"
        elif key == "coverage":
            assert (state.coverage is not None) == want, f"{where}: coverage {state.coverage}"
        elif key == "path_min":
            assert len(state.path) >= want, f"{where}: learning path {len(state.path)} < {want}"
        elif key == "courses_changed":
            assert (state.current != previous) == want, (
                f"{where}: list changed is {state.current != previous}"
            )
        else:
            raise AssertionError(f"{where}: unknown expectation {key!r}")


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("path", DIALOGUES, ids=[p.stem for p in DIALOGUES])
def test_dialogue(path: Path, agent_settings: Settings) -> None:
    dialogue = load(path)
    conversation = Conversation(agent_settings, conversation_id=path.stem)
    try:
        previous: list[str] = []
        for i, turn in enumerate(dialogue["turns"], 1):
            where = f"{path.name} turn {i} ({turn['user'][:40]!r})"
            state = conversation.send(turn["user"])
            rejected = {c.course_id for c in state.shown if c.feedback in ("dislike", "taken")}
            check_invariants(state, where, rejected)
            check_expect(state, turn.get("expect") or {}, where, previous)
            previous = list(state.current)
    finally:
        conversation.close()
