"""Explanation tests run on the real knowledge base: real ESCO labels (EN + DE), catalog courses and the
course-skill table, so templates and the validator meet the vocabulary they face in production."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable

import pytest

from craft.settings import Settings
from knowledge.store import KnowledgeBase
from tools.explain.facts import FactSheet, build_fact_sheet
from tools.explain.validate import FaithfulnessChecker


@pytest.fixture(scope="session")
def kb(enriched_settings: Settings) -> KnowledgeBase:
    from knowledge.store import get_knowledge

    return get_knowledge(enriched_settings)


@pytest.fixture(scope="session")
def course_skills(enriched_settings: Settings) -> dict[str, set[str]]:
    from knowledge.course_skills import load_course_skills

    return load_course_skills(enriched_settings)


@pytest.fixture(scope="session")
def smol_tokens(enriched_settings: Settings) -> Callable[[str], int]:
    """Token counter of the SmolLM2 tokenizer (what the generator budgets with)."""
    from transformers import AutoTokenizer

    from knowledge.models import model_path, prepare

    prepare(enriched_settings, ["SmolLM2-135M-Instruct"])
    tokenizer = AutoTokenizer.from_pretrained(
        str(model_path(enriched_settings, "SmolLM2-135M-Instruct")), local_files_only=True
    )
    return lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)


@pytest.fixture(scope="session")
def checker(kb: KnowledgeBase, smol_tokens: Callable[[str], int]) -> FaithfulnessChecker:
    from tools.explain.validate import checker_for

    return checker_for(kb).with_counter(smol_tokens, 60)


@pytest.fixture(scope="session")
def real_sheets(kb: KnowledgeBase, course_skills: dict[str, set[str]]) -> list[FactSheet]:
    """160 sheets over random occupations, EN and DE: half with a course that covers a gap skill (found via
    the course-skill table), half with a random catalog course; the user already has a random share."""
    rng = random.Random(7)
    by_skill: dict[str, list[str]] = defaultdict(list)
    for cid, uris in sorted(course_skills.items()):
        for uri in uris:
            by_skill[uri].append(cid)
    occupations = sorted(o for o in kb.occupations if kb.occupation_skills.get(o))
    course_ids = list(kb.courses.id)
    sheets = []
    for i in range(160):
        occ = rng.choice(occupations)
        skills = [uri for uri, _ in kb.occupation_skills[occ]]
        have = {uri for uri in skills if rng.random() < 0.3}
        teaching = sorted({c for uri in skills if uri not in have for c in by_skill.get(uri, [])})
        course = rng.choice(teaching) if teaching and i % 2 == 0 else rng.choice(course_ids)
        lang = "de" if i % 3 == 0 else "en"
        sheets.append(build_fact_sheet(kb, occ, course, course_skills, have=have, lang=lang))
    return sheets


ForeignSkill = Callable[[FactSheet, str], str]


@pytest.fixture(scope="session")
def foreign_skill(kb: KnowledgeBase, checker: FaithfulnessChecker) -> ForeignSkill:
    """A multi-word preferred label (in ``lang``) of a skill not on the sheet that the matcher finds alone."""

    def pick(sheet: FactSheet, lang: str) -> str:
        rng = random.Random(1)
        uris = sorted(kb.skills)
        while True:
            concept = kb.skills[rng.choice(uris)]
            label = concept.label(lang)
            if concept.uri in sheet.skill_uris() or len(label.split()) < 2 or any(c.isdigit() for c in label):
                continue
            found = checker.skill_mentions(f"You will learn to {label}.")
            if found and concept.uri in found[0][1]:
                return label

    return pick
