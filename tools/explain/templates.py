"""Grounded template explanations (EN, DE): the fallback whenever a generated text fails validation, and the
references the explanation model is trained on when no teacher model is configured.

Every word that is not template wording comes from the fact sheet (occupation, course title and provider,
skill labels, level, duration, price), so a template explanation is faithful by construction. Paraphrase
variety: each slot (coverage sentence, logistics sentence, optional remaining-gap sentence, wording of the
clauses) has several phrasings, chosen by a ``random.Random`` seeded with the sheet key, ``seed`` and
``variant``, so a sheet always gets the same text and ``variant`` gives further paraphrases for training.

Length: candidates are tried from the richest (three skills, logistics, remaining gap) to the shortest, and
the first within ``max_tokens`` (by ``count_tokens``; the generator passes its tokenizer) is returned.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from knowledge.text import gender_forms
from tools.explain.facts import FactSheet, SkillFact

MAX_TOKENS = 60
MAX_TITLE_CHARS = 60
TokenCounter = Callable[[str], int]
_PIECE = re.compile(r"[^\W\d_]+|\d|[^\w\s]")


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate of BPE tokens for when no tokenizer is at hand (the generator and the trainer
    count with the model's): short lower-case words are one token, capitalized or long ones a piece per 3.5
    letters (names, German compounds), non-ASCII ones a piece per 2.5 letters, digits and marks one each.
    Against SmolLM2's tokenizer on template texts: ×1.29 (0.94-1.67) for English, ×0.97 (0.73-1.24) German."""
    total = 0
    for piece in _PIECE.findall(text):
        if piece.isascii() and len(piece) <= 7 and piece.islower():
            total += 1
        else:
            total += math.ceil(len(piece) / (3.5 if piece.isascii() else 2.5))
    return total


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _join(items: list[str], conjunction: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class _Choices:
    """The paraphrase picked for each slot (drawn once per sheet/variant, kept across length reductions)."""

    coverage: int
    logistics: int
    duration_verb: int
    price_verb: int
    remainder: bool
    remainder_form: int


def _choices(sheet: FactSheet, seed: int, variant: int) -> _Choices:
    rng = random.Random(f"{seed}|{sheet.key}|{variant}")
    return _Choices(
        coverage=rng.randrange(60),
        logistics=rng.randrange(60),
        duration_verb=rng.randrange(60),
        price_verb=rng.randrange(60),
        remainder=rng.random() < 0.35,
        remainder_form=rng.randrange(60),
    )


def template_explanation(
    sheet: FactSheet,
    *,
    variant: int = 0,
    seed: int = 0,
    max_tokens: int = MAX_TOKENS,
    count_tokens: TokenCounter = approx_tokens,
) -> str:
    """A short grounded explanation of ``sheet`` (see the module docstring); only names sheet facts."""
    pick = _choices(sheet, seed, variant)
    writer = _German(sheet, pick) if sheet.language == "de" else _English(sheet, pick)
    last = ""
    for text in writer.candidates():
        last = text
        if count_tokens(text) <= max_tokens:
            return text
    return last  # the shortest form; only a very long occupation label can exceed the budget


class _Writer:
    """Builds the candidate texts, richest first; subclasses supply the wording of one language."""

    def __init__(self, sheet: FactSheet, pick: _Choices) -> None:
        self.sheet, self.pick = sheet, pick
        title = sheet.course.title
        self.has_title = len(title) <= MAX_TITLE_CHARS

    def candidates(self) -> list[str]:
        out: list[str] = []
        covered = self.sheet.covered
        for use_title in (True, False) if self.has_title else (False,):
            for shown in sorted({min(len(covered), n) for n in (3, 2, 1)}, reverse=True):
                for logistics in ("full", "short", "none"):
                    for remainder in (self.pick.remainder, False):
                        parts = [self.coverage(covered[:shown], len(covered) - shown, use_title)]
                        if remainder:
                            parts.append(self.remainder())
                        if logistics != "none":
                            parts.append(self.logistics(short=logistics == "short"))
                        out.append(" ".join(p for p in parts if p))
        out += [self.minimal(covered[:n], max(0, len(covered) - n)) for n in (2, 1)]
        return list(dict.fromkeys(out))

    def remainder(self) -> str:
        uncovered = self.sheet.uncovered
        if not uncovered:
            return ""
        return self.remainder_text(uncovered[0])

    def coverage(self, shown: list[SkillFact], more: int, use_title: bool) -> str:
        raise NotImplementedError

    def minimal(self, shown: list[SkillFact], more: int) -> str:
        """The shortest wording, without the occupation (for very long occupation labels)."""
        raise NotImplementedError

    def remainder_text(self, skill: SkillFact) -> str:
        raise NotImplementedError

    def logistics(self, *, short: bool) -> str:
        raise NotImplementedError


class _English(_Writer):
    def _skills(self, shown: list[SkillFact], more: int) -> str:
        labels = list(s.label for s in shown)
        if more:
            noun = "gap skill" if more == 1 else "gap skills"
            return ", ".join(labels) + f" and {more} more of your {noun}"
        return _join(labels, "and")

    def coverage(self, shown: list[SkillFact], more: int, use_title: bool) -> str:
        occ = self.sheet.occupation.label
        a = _article(occ)
        course = f'"{self.sheet.course.title}"' if use_title else "this course"
        course_cap = f'"{self.sheet.course.title}"' if use_title else "This course"
        if not shown:
            options = [
                f"{course_cap} does not teach any of your missing skills for {occ} directly, "
                "so treat it as background.",
                f"None of your gap skills for {occ} is listed for {course}; it is a broader option.",
                f"{course_cap} is related to your goal of working as {a} {occ}, "
                "but it covers none of your gap skills directly.",
            ]
            return options[self.pick.coverage % len(options)]
        skills = self._skills(shown, more)
        these = "this skill" if len(shown) == 1 and not more else "these skills"
        # ESCO skills are mostly verb phrases ("manage budgets"): a colon keeps any label grammatical
        options = [
            f"{course_cap} builds what you still need as {a} {occ}: {skills}.",
            f"To work as {a} {occ}, you still need {these}: {skills}. {_cap(course)} covers them.",
            f"{course_cap} helps close your skill gap for {occ}. It covers: {skills}.",
            f"For your goal of becoming {a} {occ}, {course} trains missing skills: {skills}.",
        ]
        if all(s.knowledge for s in shown):  # nouns ("mathematics") read well as objects
            options.append(f"{course_cap} teaches {skills}, which you still need as {a} {occ}.")
            if all(s.essential for s in shown) and not more:
                noun = "essential knowledge"
                options.append(f"{course_cap} covers {skills}, {noun} for {a} {occ}.")
        elif all(s.essential for s in shown) and not more:
            noun = "an essential skill" if len(shown) == 1 else "essential skills"
            options.append(f"{course_cap} trains {noun} for {a} {occ}: {skills}.")
        return options[self.pick.coverage % len(options)]

    def minimal(self, shown: list[SkillFact], more: int) -> str:
        if not shown:
            return "This course covers none of your gap skills directly."
        return f"This course covers {self._skills(shown, more)}."

    def remainder_text(self, skill: SkillFact) -> str:
        options = [
            f"Still missing afterwards: {skill.label}.",
            f"It does not cover this gap skill: {skill.label}.",
            f"One skill it leaves open is {skill.label}.",
        ]
        return options[self.pick.remainder_form % len(options)]

    def logistics(self, *, short: bool) -> str:
        course = self.sheet.course
        level = {
            "beginner": "a beginner course",
            "intermediate": "an intermediate course",
            "advanced": "an advanced course",
            "mixed": "a course for all levels",
        }.get(course.level)
        duration = None
        if course.duration:
            verbs = ("takes", "runs for", "lasts")
            duration = f"{verbs[self.pick.duration_verb % len(verbs)]} {course.duration}"
        price = None
        if course.cost == "free":
            price = ("is free", "costs nothing")[self.pick.price_verb % 2]
        elif course.cost == "paid":
            price = ("costs", "is priced at")[self.pick.price_verb % 2] + f" {course.price_text}"
        provider = course.provider if not short else None
        predicates = [p for p in (f"is {level}" if level else None, duration, price) if p]
        form = self.pick.logistics % 3
        if provider and form == 1:
            if not predicates:
                return f"It is offered by {provider}."
            return f"Offered by {provider}, it {_join(predicates, 'and')}."
        if provider:
            predicates.insert(1 if level else 0, f"comes from {provider}")
        if not predicates:
            return ""
        if form == 2 and len(predicates) > 1:
            return f"It {_join(predicates[:-1], 'and')}, and it {predicates[-1]}."
        return f"It {_join(predicates, 'and')}."


class _German(_Writer):
    def __init__(self, sheet: FactSheet, pick: _Choices) -> None:
        super().__init__(sheet, pick)
        label = sheet.occupation.label
        forms = gender_forms(label) if len(label) > 40 else []
        self.occ = forms[0] if forms else label  # long "Pfleger/Pflegerin" pairs: the first form

    def _skills(self, shown: list[SkillFact], more: int) -> str:
        labels = list(s.label for s in shown)
        if more:
            return ", ".join(labels) + f" und {more} weitere Ihrer fehlenden Kompetenzen"
        return _join(labels, "und")

    def coverage(self, shown: list[SkillFact], more: int, use_title: bool) -> str:
        occ = self.occ
        course = f"der Kurs „{self.sheet.course.title}“" if use_title else "dieser Kurs"
        course_cap = _cap(course)
        if not shown:
            options = [
                f"{course_cap} behandelt keine Ihrer fehlenden Kompetenzen für {occ} direkt; "
                "er eignet sich eher als Hintergrund.",
                f"Für Ihr Berufsziel {occ} deckt {course} keine Ihrer Lücken direkt ab.",
                f"{course_cap} passt thematisch zu Ihrem Ziel {occ}, "
                "vermittelt aber keine Ihrer fehlenden Kompetenzen direkt.",
            ]
            return options[self.pick.coverage % len(options)]
        skills = self._skills(shown, more)
        options = [
            f"{course_cap} vermittelt Ihnen für Ihr Berufsziel {occ} noch fehlende Kompetenzen: {skills}.",
            f"Für Ihr Berufsziel {occ} fehlt Ihnen noch: {skills}. Genau das behandelt {course}.",
            f"{course_cap} schließt Lücken für Ihr Ziel {occ}, denn er deckt diese Kompetenzen ab: {skills}.",
            f"Als {occ} brauchen Sie noch: {skills}. {_cap(course)} deckt das ab.",
        ]
        if all(s.essential for s in shown) and not more:
            options.append(f"{course_cap} behandelt, was für {occ} unverzichtbar ist: {skills}.")
        return options[self.pick.coverage % len(options)]

    def minimal(self, shown: list[SkillFact], more: int) -> str:
        if not shown:
            return "Dieser Kurs deckt keine Ihrer Lücken direkt ab."
        return f"Dieser Kurs behandelt: {self._skills(shown, more)}."

    def remainder_text(self, skill: SkillFact) -> str:
        options = [
            f"Danach fehlt Ihnen noch: {skill.label}.",
            f"Nicht abgedeckt ist: {skill.label}.",
        ]
        return options[self.pick.remainder_form % len(options)]

    def logistics(self, *, short: bool) -> str:
        course = self.sheet.course
        level = {
            "beginner": "ein Einsteigerkurs",
            "intermediate": "ein Kurs auf mittlerem Niveau",
            "advanced": "ein Kurs für Fortgeschrittene",
            "mixed": "ein Kurs für alle Niveaus",
        }.get(course.level)
        predicates = []
        if level:
            predicates.append(f"ist {level}")
        if course.provider and not short:
            predicates.append(f"wird von {course.provider} angeboten")
        if course.duration:
            predicates.append(("dauert", "umfasst")[self.pick.duration_verb % 2] + f" {course.duration}")
        if course.cost == "free":
            predicates.append(("ist kostenlos", "kostet nichts")[self.pick.price_verb % 2])
        elif course.cost == "paid":
            predicates.append(f"kostet {course.price_text}")
        if not predicates:
            return ""
        subject = ("Er", "Der Kurs")[self.pick.logistics % 2]
        return f"{subject} {_join(predicates, 'und')}."
