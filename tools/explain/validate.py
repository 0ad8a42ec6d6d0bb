"""Faithfulness of an explanation to its fact sheet: every ESCO skill and catalog course a text names must be
on the sheet, and so must every quoted phrase and every number; plus the length budget.

* **skills** — ESCO skill labels (EN + DE preferred, EN alternative) found by the Aho–Corasick phrase matcher
  of the course-skill enrichment (``PhraseExtractor``, with its rules that keep ordinary words such as
  "plan" or "English" from counting as skills). A mention is supported when one of its skill URIs is on
  the sheet, its words lie inside a sheet text (the occupation label, the course title, a skill label) or
  they contain a sheet skill label ("teaches psychology" matches the ESCO skill "teach psychology").
* **courses** — catalog titles of three or more words (shorter ones are ordinary phrases), matched on
  word boundaries by a second automaton; only the sheet's own course may be named.
* **quotes** — text in quotation marks must be a sheet text (a model inventing a course title quotes it).
* **numbers** — prices, durations and counts must be the sheet's.
* **length** — ≤ ``max_tokens`` tokens, non-empty, ending a sentence (a cut-off generation fails).

``faithful`` is the metric (nothing named that the sheet lacks); ``ok`` adds the form checks and decides
whether the generator keeps a text or falls back to the template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import ahocorasick
from pydantic import BaseModel, ConfigDict, Field

from tools.explain.facts import FactSheet, numbers_in
from tools.explain.templates import MAX_TOKENS, TokenCounter, approx_tokens

if TYPE_CHECKING:
    from craft.settings import Settings
    from knowledge.course_skills import PhraseExtractor
    from knowledge.store import KnowledgeBase

MentionKind = Literal["skill", "course", "quote", "number"]
MIN_TITLE_WORDS = 3
LABEL_TYPES = ("pref", "alt")
_WORD = re.compile(r"[^\W_]+|[+#]+", re.UNICODE)
_QUOTE = re.compile(r"\"([^\"]{3,}?)\"|“([^”„\"]{3,}?)[”“]|„([^“”\"]{3,}?)[“”]|«([^»]{3,}?)»")
_SENTENCE_END = re.compile(r"[.!?…)\]\"“”»]\s*$")


def norm_words(text: str) -> str:
    """Lower-case words joined by single spaces: the form titles and sheet texts are compared in."""
    return " ".join(w.lower() for w in _WORD.findall(text))


class Mention(BaseModel):
    """Something a text names that the sheet does not support."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: MentionKind
    text: str = Field(description="As written in the explanation.")
    refers_to: list[str] = Field(default_factory=list, description="Skill URIs or course ids it matched.")


class Verdict(BaseModel):
    """``faithful``: nothing unsupported named; ``ok``: faithful and within the form checks."""

    model_config = ConfigDict(extra="forbid")

    ok: bool
    faithful: bool
    tokens: int
    unsupported: list[Mention] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


@dataclass(frozen=True)
class _Sheet:
    """The sheet's texts, normalized once per check."""

    texts: list[str]
    skills: list[str]
    uris: set[str]
    numbers: set[str]
    course_id: str

    def contains(self, words: str) -> bool:
        """``words`` lie inside a sheet text."""
        padded = f" {words} "
        return any(padded in f" {t} " for t in self.texts)

    def overlaps(self, hay: str, start: int, end: int) -> bool:
        """The normalized span [start, end) of ``hay`` overlaps an occurrence of a sheet text in it (a skill
        label matched across the edge of the occupation label: "a computer" in "a computer … seller")."""
        for text in self.texts:
            if not text:
                continue
            at = hay.find(text)
            while at >= 0:
                bounded = (at == 0 or hay[at - 1] == " ") and (
                    at + len(text) == len(hay) or hay[at + len(text)] == " "
                )
                if bounded and at < end and start < at + len(text):
                    return True
                at = hay.find(text, at + 1)
        return False

    def includes(self, words: str) -> bool:
        """``words`` contain a sheet skill label ("teaches psychology" around the sheet's "psychology")."""
        padded = f" {words} "
        return any(f" {t} " in padded for t in self.skills)


class FaithfulnessChecker:
    """Finds the skills, courses, quotes and numbers a text names and judges them against a fact sheet."""

    def __init__(
        self,
        skills: PhraseExtractor,
        titles: Iterable[tuple[str, str]],
        *,
        max_tokens: int = MAX_TOKENS,
        count_tokens: TokenCounter = approx_tokens,
        skill_labels: dict[str, str] | None = None,
    ) -> None:
        """``titles``: (course id, title) of the catalog; ``skill_labels``: URI → label for messages."""
        self.skills = skills
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens
        self.skill_labels = skill_labels or {}
        self._titles = ahocorasick.Automaton()
        by_norm: dict[str, list[str]] = {}
        for cid, title in titles:
            norm = norm_words(title)
            if len(norm.split()) >= MIN_TITLE_WORDS:
                by_norm.setdefault(norm, []).append(cid)
        for norm, ids in by_norm.items():
            self._titles.add_word(norm, (norm, tuple(sorted(ids))))
        if by_norm:
            self._titles.make_automaton()
        self.title_count = len(by_norm)

    @classmethod
    def from_kb(cls, kb: KnowledgeBase, **kwargs: object) -> FaithfulnessChecker:
        """Skill labels (EN + DE) and course titles of the knowledge base (the automatons take seconds)."""
        from knowledge.course_skills import PhraseExtractor

        matcher = PhraseExtractor.from_kb(kb, label_types=LABEL_TYPES)
        labels = {uri: concept.label("en") for uri, concept in kb.skills.items()}
        titles = zip(kb.courses.id, kb.courses.title, strict=True)
        return cls(matcher, titles, skill_labels=labels, **kwargs)  # type: ignore[arg-type]

    def with_counter(self, count_tokens: TokenCounter, max_tokens: int | None = None) -> FaithfulnessChecker:
        """The same automatons with another token counter (the generator's tokenizer)."""
        clone = object.__new__(FaithfulnessChecker)
        clone.__dict__.update(self.__dict__)
        clone.count_tokens = count_tokens
        clone.max_tokens = max_tokens if max_tokens is not None else self.max_tokens
        return clone

    # --- mentions -------------------------------------------------------------------------------------

    def skill_mentions(self, text: str) -> list[tuple[str, set[str], int]]:
        """(span, skill URIs, start offset) of every skill label found in ``text``."""
        spans: dict[tuple[int, int], tuple[str, set[str], int]] = {}
        for evidence in self.skills.extract("", "", text, ""):
            assert evidence.start is not None and evidence.end is not None
            key = (evidence.start, evidence.end)
            spans.setdefault(key, (evidence.span, set(), evidence.start))[1].add(evidence.skill_uri)
        return [spans[k] for k in sorted(spans)]

    def course_mentions(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """(normalized title, course ids) of every catalog title (≥ 3 words) found in ``text``."""
        if not self.title_count:
            return []
        hay = norm_words(text)
        found: list[tuple[int, int, str, tuple[str, ...]]] = []
        for end, (norm, ids) in self._titles.iter(hay):
            start = end - len(norm) + 1
            if (start == 0 or hay[start - 1] == " ") and (end == len(hay) - 1 or hay[end + 1] == " "):
                found.append((start, end + 1, norm, ids))
        found.sort(key=lambda m: (m[0] - m[1], m[0]))  # longest first: a title inside a longer one is not new
        taken: list[tuple[int, int]] = []
        out = []
        for start, end, norm, ids in found:
            if any(s <= start and end <= e for s, e in taken):
                continue
            taken.append((start, end))
            out.append((norm, ids))
        return out

    # --- verdict --------------------------------------------------------------------------------------

    def check(self, text: str, sheet: FactSheet) -> Verdict:
        facts = _Sheet(
            texts=[norm_words(t) for t in sheet.allowed_texts()],
            skills=[norm_words(s.label) for s in sheet.gap],
            uris=sheet.skill_uris(),
            numbers=sheet.allowed_numbers(),
            course_id=sheet.course.id,
        )
        unsupported: list[Mention] = []
        hay = norm_words(text)
        for span, uris, start in self.skill_mentions(text):
            words = norm_words(span)
            if uris & facts.uris or facts.contains(words) or facts.includes(words):
                continue
            prefix = norm_words(text[:start])
            at = len(prefix) + 1 if prefix else 0
            if facts.overlaps(hay, at, at + len(words)):
                continue
            unsupported.append(Mention(kind="skill", text=span, refers_to=sorted(uris)))
        for norm, ids in self.course_mentions(text):
            if facts.course_id in ids or facts.contains(norm):
                continue
            unsupported.append(Mention(kind="course", text=norm, refers_to=list(ids)))
        for match in _QUOTE.finditer(text):
            quoted = next(g for g in match.groups() if g is not None).strip()
            if norm_words(quoted) and not facts.contains(norm_words(quoted)):
                unsupported.append(Mention(kind="quote", text=quoted))
        for number in dict.fromkeys(numbers_in(text)):
            plain = number.rstrip("0").rstrip(".") if "." in number else number
            if number not in facts.numbers and plain not in facts.numbers:
                unsupported.append(Mention(kind="number", text=number))

        unsupported = list({(m.kind, norm_words(m.text)): m for m in unsupported}.values())
        reasons = [self._describe(m) for m in unsupported]
        stripped = text.strip()
        tokens = self.count_tokens(stripped) if stripped else 0
        form: list[str] = []
        if not stripped:
            form.append("empty output")
        else:
            if tokens > self.max_tokens:
                form.append(f"too long: {tokens} tokens > {self.max_tokens}")
            if not _SENTENCE_END.search(stripped):
                form.append("cut off: does not end a sentence")
        return Verdict(
            ok=not unsupported and not form,
            faithful=not unsupported,
            tokens=tokens,
            unsupported=unsupported,
            reasons=reasons + form,
        )

    def _describe(self, mention: Mention) -> str:
        if mention.kind == "skill":
            labels = sorted({self.skill_labels.get(u, u) for u in mention.refers_to})
            return f"names skill {mention.text!r} ({'; '.join(labels[:3])}) that is not on the fact sheet"
        if mention.kind == "course":
            return f"names course {mention.text!r} that is not the sheet's course"
        if mention.kind == "quote":
            return f"quotes {mention.text!r}, which is not on the fact sheet"
        return f"states the number {mention.text} that is not on the fact sheet"


@lru_cache(maxsize=2)
def checker_for(kb: KnowledgeBase) -> FaithfulnessChecker:
    """One checker per knowledge base (building the automatons takes seconds)."""
    return FaithfulnessChecker.from_kb(kb)


def faithful(
    text: str,
    sheet: FactSheet,
    *,
    checker: FaithfulnessChecker | None = None,
    settings: Settings | None = None,
) -> Verdict:
    """Judge ``text`` against ``sheet`` with ``checker`` (default: the current knowledge base's)."""
    if checker is None:
        from knowledge.store import get_knowledge

        checker = checker_for(get_knowledge(settings))
    return checker.check(text, sheet)
