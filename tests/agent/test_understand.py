"""The rule parser on EN/DE phrasings, per conversation phase: what a message means decides the whole turn,
so each phrasing the issue lists (and its German twin) is pinned here without loading any data."""

from __future__ import annotations

from typing import Any

import pytest

from agent.state import AdvisorState, OccupationCandidate, OccupationRef, next_phase
from agent.understand import course_ref, detect_language, parse, preferences

GOAL = "goal"
CHOOSING = "choosing"
SKILLS = "skills"
LISTED = "listed"
NO_LIST = "no_list"


def make_state(kind: str) -> AdvisorState:
    """A state at the given point of a conversation, with the phase derived as the graph derives it."""
    occupation = OccupationRef(uri="http://data.europa.eu/esco/occupation/x", label="data analyst")
    state = {
        GOAL: AdvisorState(),
        CHOOSING: AdvisorState(
            candidates=[
                OccupationCandidate(uri="a", label="nurse assistant", score=0.8),
                OccupationCandidate(uri="b", label="specialist nurse", score=0.7),
            ]
        ),
        SKILLS: AdvisorState(occupation=occupation),
        LISTED: AdvisorState(occupation=occupation, skills_done=True, current=["c1", "c2", "c3", "c4", "c5"]),
        NO_LIST: AdvisorState(occupation=occupation, skills_done=True),
    }[kind]
    state.phase = next_phase(state)
    return state


PARSES: list[tuple[str, str, dict[str, Any]]] = [
    # goals, typos and unknown titles are all occupation words for the lookup
    (GOAL, "I'd like to become a data analyst", {"intent": "set_goal", "occupation": "data analyst"}),
    (GOAL, "I want to become a data analist", {"intent": "set_goal", "occupation": "data analist"}),
    (GOAL, "sofware developer", {"intent": "set_goal", "occupation": "sofware developer"}),
    (GOAL, "dragon tamer", {"intent": "set_goal", "occupation": "dragon tamer"}),
    (GOAL, "Ich möchte Bäcker werden", {"intent": "set_goal", "occupation": "Bäcker"}),
    (GOAL, "Ich würde gerne als Koch arbeiten", {"intent": "set_goal", "occupation": "Koch"}),
    (GOAL, "Mein Ziel ist Pflegefachkraft", {"intent": "set_goal", "occupation": "Pflegefachkraft"}),
    (GOAL, "Ich möchte nur kostenlose Kurse", {"intent": "refine", "preferences": {"free_only": True}}),
    (
        GOAL,
        "I want to become an online community manager",
        {"intent": "set_goal", "occupation": "online community manager", "preferences": {}},
    ),
    (
        GOAL,
        "Ich möchte Bäcker werden, nur kostenlose Kurse bitte",
        {
            "intent": "set_goal",
            "occupation": "Bäcker",
            "preferences": {"free_only": True},
            "wants_courses": True,
        },
    ),
    (LISTED, "Ich möchte etwas Günstigeres", {"intent": "refine", "preferences": {"cheaper": True}}),
    (
        GOAL,
        "I want to become a baker, only free courses please",
        {"intent": "set_goal", "occupation": "baker", "preferences": {"free_only": True}},
    ),
    (GOAL, "show me courses", {"intent": "help"}),
    (GOAL, "Hi", {"intent": "greet"}),
    # questions
    (GOAL, "what does a data analyst need?", {"intent": "question", "topic": "data analyst"}),
    (GOAL, "Was braucht ein Koch?", {"intent": "question", "topic": "Koch"}),
    (GOAL, "Welche Fähigkeiten braucht ein Bäcker?", {"intent": "question", "topic": "Bäcker"}),
    (GOAL, "what do you know about me?", {"intent": "profile"}),
    (LISTED, "Was weißt du über mich?", {"intent": "profile"}),
    # picking among offered occupations, by number, ordinal or title
    (CHOOSING, "2", {"intent": "choose", "choice": 2}),
    (CHOOSING, "the second one", {"intent": "choose", "choice": 2}),
    (CHOOSING, "die zweite", {"intent": "choose", "choice": 2}),
    (CHOOSING, "Nummer 1", {"intent": "choose", "choice": 1}),
    (CHOOSING, "specialist nurse", {"intent": "set_goal", "occupation": "specialist nurse"}),
    # skills
    (SKILLS, "I know SQL and some Python", {"intent": "tell_skills", "skills_have": ["SQL", "some Python"]}),
    (SKILLS, "Java, Python, Git", {"intent": "tell_skills", "skills_have": ["Java", "Python", "Git"]}),
    (SKILLS, "SQL kann ich schon", {"intent": "tell_skills", "skills_have": ["SQL"]}),
    (
        SKILLS,
        "Ich kann Excel, SQL und Python",
        {"intent": "tell_skills", "skills_have": ["Excel", "SQL", "Python"]},
    ),
    (SKILLS, "nothing yet", {"intent": "no_skills"}),
    (SKILLS, "noch nichts", {"intent": "no_skills"}),
    (SKILLS, "show me courses", {"intent": "recommend"}),
    (SKILLS, "the second one", {"intent": "other", "skills_have": []}),  # no list, no candidates: not a skill
    # refinements of a shown list
    (LISTED, "cheaper", {"intent": "refine", "preferences": {"cheaper": True}}),
    (LISTED, "günstiger", {"intent": "refine", "preferences": {"cheaper": True}}),
    (LISTED, "only free courses please", {"intent": "refine", "preferences": {"free_only": True}}),
    (LISTED, "nur kostenlose Kurse", {"intent": "refine", "preferences": {"free_only": True}}),
    (LISTED, "in German", {"intent": "refine", "preferences": {"languages": ["de"]}}),
    (LISTED, "nur deutsche Kurse bitte", {"intent": "refine", "preferences": {"languages": ["de"]}}),
    (LISTED, "more beginner", {"intent": "refine", "preferences": {"level": "beginner"}}),
    (LISTED, "einfacher bitte", {"intent": "refine", "preferences": {"level": "beginner"}}),
    (LISTED, "under 50 euros", {"intent": "refine", "preferences": {"price_max": 50.0}}),
    (LISTED, "not interested in Excel", {"intent": "refine", "skills_skip": ["Excel"]}),
    (LISTED, "Kein Interesse an Excel", {"intent": "refine", "skills_skip": ["Excel"]}),
    (LISTED, "Excel interessiert mich nicht", {"intent": "refine", "skills_skip": ["Excel"]}),
    (LISTED, "Ich will keine Excel-Kurse", {"intent": "refine", "skills_skip": ["Excel"]}),
    (LISTED, "I already know SQL", {"intent": "tell_skills", "skills_have": ["SQL"]}),
    # references to the shown list
    (LISTED, "more like the second one", {"intent": "more_like", "course_ref": 2}),
    (LISTED, "mehr wie der zweite", {"intent": "more_like", "course_ref": 2}),
    (LISTED, "why this one?", {"intent": "why", "course_ref": 1}),
    (LISTED, "why the second one?", {"intent": "why", "course_ref": 2}),
    (LISTED, "warum der dritte?", {"intent": "why", "course_ref": 3}),
    (LISTED, "the second one", {"intent": "why", "course_ref": 2}),
    (LISTED, "I already took the first one", {"intent": "feedback", "course_ref": 1, "verdict": "taken"}),
    (
        LISTED,
        "Den ersten habe ich schon gemacht",
        {"intent": "feedback", "course_ref": 1, "verdict": "taken"},
    ),
    (LISTED, "I don't like the third one", {"intent": "feedback", "course_ref": 3, "verdict": "dislike"}),
    (LISTED, "Der zweite gefällt mir nicht", {"intent": "feedback", "course_ref": 2, "verdict": "dislike"}),
    (LISTED, "I like the last one", {"intent": "feedback", "course_ref": 5, "verdict": "like"}),
    (CHOOSING, "the last one", {"intent": "choose", "choice": 2}),
    (NO_LIST, "why the last one?", {"intent": "why", "course_ref": 1}),
    (NO_LIST, "warum der erste?", {"intent": "why", "course_ref": 1}),  # the why node says there is no list
    # changing one's mind, starting over, switching the reply language
    (
        LISTED,
        "actually I'd rather become a web developer",
        {"intent": "set_goal", "occupation": "web developer"},
    ),
    (LISTED, "Ich möchte lieber Webdesigner werden", {"intent": "set_goal", "occupation": "Webdesigner"}),
    (LISTED, "start over", {"intent": "reset"}),
    (LISTED, "von vorne", {"intent": "reset"}),
    (LISTED, "answer in German", {"intent": "language", "reply_language": "de"}),
    (LISTED, "auf Englisch bitte", {"intent": "language", "reply_language": "en"}),
]


@pytest.mark.parametrize(("kind", "text", "expected"), PARSES, ids=[f"{k}:{t[:40]}" for k, t, _ in PARSES])
def test_parse(kind: str, text: str, expected: dict[str, Any]) -> None:
    got = parse(text, make_state(kind)).model_dump(mode="json")
    for key, want in expected.items():
        if key == "preferences":
            assert {k: v for k, v in got[key].items() if v not in (None, False)} == want
        else:
            assert got[key] == want, f"{key}: {got[key]!r} != {want!r}"


CV = (
    "Summary: 5 years as a backend developer, advanced level.\n"
    "Skills: Java, Python, SQL, Git\n"
    "Experience: reset passwords, wrote unit tests, replied to customers in English\n"
    "Languages: English, German"
)


def test_a_pasted_cv_is_content_not_commands() -> None:
    """ "reset", "in English" and "advanced" inside a CV must not restart, switch language or filter."""
    update = parse(CV, make_state(SKILLS))
    assert update.intent == "tell_skills"
    assert update.preferences.empty()
    assert {"Java", "Python", "SQL", "Git", "wrote unit tests"} <= set(update.skills_have)
    assert not any(p.casefold().startswith("skills:") for p in update.skills_have)


def test_a_cv_that_names_a_goal_sets_it_and_keeps_the_skills() -> None:
    update = parse("I want to become a data analyst\nSkills: SQL, Excel, statistics", make_state(GOAL))
    assert update.intent == "set_goal"
    assert update.occupation == "data analyst"
    assert update.skills_have == ["SQL", "Excel", "statistics"]


@pytest.mark.parametrize(
    ("text", "current", "expected"),
    [
        ("I'd like to become a data analyst", "de", "en"),
        ("Ich möchte Bäcker werden", "en", "de"),
        ("Was braucht ein Koch?", "en", "de"),
        ("nur kostenlose Kurse bitte", "en", "de"),
        ("only free courses please", "de", "en"),
        ("SQL", "de", "de"),  # one neutral word keeps the conversation's language
        ("data analyst", "de", "de"),
        ("2", "de", "de"),
        ("Hallo!", "en", "de"),
        ("Hi", "de", "de"),
    ],
)
def test_detect_language(text: str, current: str, expected: str) -> None:
    assert detect_language(text, current) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("free courses only", {"free_only": True}),
        ("kostenlos bitte", {"free_only": True}),
        ("I have free time on weekends", {}),
        ("something cheaper", {"cheaper": True}),
        ("max 40 €", {"price_max": 40.0}),
        ("unter 19,99 Euro", {"price_max": 19.99}),
        ("German courses", {"languages": ["de"]}),
        ("Kurse auf Englisch", {"languages": ["en"]}),
        ("more advanced please", {"level": "advanced"}),
        ("für Einsteiger", {"level": "beginner"}),
        ("online please", {"formats": ["online"]}),
        ("in-person near Berlin", {"formats": ["in-person"], "location": "Berlin"}),
        ("5 hours per week", {"hours_per_week": 5.0}),
    ],
)
def test_preferences(text: str, expected: dict[str, Any]) -> None:
    got = preferences(text).model_dump(exclude_defaults=True)
    assert got == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("why the second one?", 2),
        ("more like the third", 3),
        ("#4", 4),
        ("course 5", 5),
        ("Kurs 2 bitte", 2),
        ("der letzte", -1),
        ("why the ninth one?", 9),
        ("Warum der achte?", 8),
        ("den ersten", 1),
        ("only free courses", None),
        ("I know SQL", None),
    ],
)
def test_course_ref(text: str, expected: int | None) -> None:
    assert course_ref(text) == expected
