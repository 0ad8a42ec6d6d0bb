"""``ExplanationGenerator``: short grounded explanations for a batch of course cards, one backend call.

For each fact sheet the backend writes a candidate (``≤ max_tokens``); a candidate that runs over the budget
is cut back to its last complete sentence within it; the validator then checks it against the sheet. A
candidate that names something the sheet lacks, or is empty or cut off, is replaced by the grounded template
and the reason is kept, so the caller (the agent) can report how often output falls back. Sheets in a
language the backend does not write (German with the English SmolLM2 adapter) and every sheet when the
backend fails get the template directly.

``stream`` yields the explanations batch by batch in input order, so cards can be shown first and their
explanations filled in as they come.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.explain.backends import BackendError, ExplanationBackend, LocalBackend, OpenAIBackend
from tools.explain.facts import FactSheet
from tools.explain.prompt import messages
from tools.explain.templates import MAX_TOKENS, TokenCounter, template_explanation
from tools.explain.validate import FaithfulnessChecker, checker_for

if TYPE_CHECKING:
    from craft.settings import Settings
    from knowledge.store import KnowledgeBase

Source = Literal["model", "template"]
BackendChoice = Literal["auto", "local", "openai", "template"]
_ENDS = '.!?…"”“»)'
_SENTENCE = re.compile(r".+?(?:[.!?…](?=\s|$)|$)", re.DOTALL)


class Explanation(BaseModel):
    """One course's explanation and where it came from."""

    model_config = ConfigDict(extra="forbid")

    course_id: str
    occupation_uri: str
    language: str
    text: str
    source: Source
    model: str | None = Field(None, description="The backend that wrote it (None: template only).")
    fallback_reason: str | None = Field(None, description="Why the model's text was not used.")
    candidate: str | None = Field(None, description="The rejected model text, for diagnostics.")
    tokens: int = 0


@dataclass
class FallbackStats:
    """Running counts since the generator was made (the agent reports the template share)."""

    model: int = 0
    template: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.model + self.template

    @property
    def fallback_rate(self) -> float:
        return self.template / self.total if self.total else 0.0

    def add(self, explanation: Explanation) -> None:
        if explanation.source == "model":
            self.model += 1
        else:
            self.template += 1
            self.reasons[_reason_kind(explanation.fallback_reason)] += 1


def _reason_kind(reason: str | None) -> str:
    """Group reasons for counting: 'names skill …' → 'names skill'."""
    if not reason:
        return "template only"
    first = reason.split(";")[0]
    for prefix in ("names skill", "names course", "quotes", "states the number", "too long", "cut off"):
        if first.startswith(prefix):
            return prefix
    return first.split(":")[0]


def trim_to_budget(text: str, count_tokens: TokenCounter, max_tokens: int) -> str:
    """``text`` (whitespace collapsed) cut back to its last complete sentence within ``max_tokens``; as is
    when it fits and ends a sentence, or when not even the first sentence fits (validation rejects it)."""
    text = " ".join(text.split())
    if count_tokens(text) <= max_tokens and (not text or text[-1] in _ENDS):
        return text
    kept = ""
    for match in _SENTENCE.finditer(text):
        sentence = match.group().strip()
        if not sentence or sentence[-1] not in ".!?…":
            break
        joined = f"{kept} {sentence}".strip()
        if count_tokens(joined) > max_tokens:
            break
        kept = joined
    return kept or text


class ExplanationGenerator:
    """Backend candidates, validated, with the grounded template as fallback (see the module docstring)."""

    def __init__(
        self,
        checker: FaithfulnessChecker,
        backend: ExplanationBackend | None = None,
        *,
        max_tokens: int = MAX_TOKENS,
        seed: int = 0,
    ) -> None:
        self.backend = backend
        self.max_tokens = max_tokens
        self.seed = seed
        self.count_tokens = backend.count_tokens if backend is not None else checker.count_tokens
        self.checker = checker.with_counter(self.count_tokens, max_tokens)
        self.stats = FallbackStats()

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        kb: KnowledgeBase | None = None,
        backend: BackendChoice = "auto",
        **kwargs: object,
    ) -> ExplanationGenerator:
        """``auto``: the OpenAI-compatible endpoint when ``llm_backend='openai'`` and one is configured, else
        the local model (the trained ``explainer`` adapter, or SmolLM2 zero-shot); ``template``: no model."""
        from craft.settings import get_settings
        from knowledge.store import get_knowledge

        settings = settings or get_settings()
        checker = checker_for(kb or get_knowledge(settings))
        chosen: ExplanationBackend | None = None
        if backend == "openai" or (backend == "auto" and settings.llm_backend == "openai"):
            chosen = OpenAIBackend.from_settings(settings)
        elif backend in ("auto", "local"):
            chosen = LocalBackend.from_registry(settings)
        return cls(checker, chosen, **kwargs)  # type: ignore[arg-type]

    def template(self, sheet: FactSheet, reason: str | None, candidate: str | None = None) -> Explanation:
        text = template_explanation(
            sheet, seed=self.seed, max_tokens=self.max_tokens, count_tokens=self.count_tokens
        )
        return Explanation(
            course_id=sheet.course.id,
            occupation_uri=sheet.occupation.uri,
            language=sheet.language,
            text=text,
            source="template",
            model=self.backend.name if self.backend is not None and candidate is not None else None,
            fallback_reason=reason,
            candidate=candidate,
            tokens=self.count_tokens(text),
        )

    def trim(self, text: str) -> str:
        return trim_to_budget(text, self.count_tokens, self.max_tokens)

    def judge(self, sheet: FactSheet, candidate: str) -> Explanation:
        """Keep the backend's ``candidate`` when valid, else the template with the reason."""
        text = self.trim(candidate)
        verdict = self.checker.check(text, sheet)
        if not verdict.ok:
            return self.template(sheet, verdict.reason, candidate)
        assert self.backend is not None
        return Explanation(
            course_id=sheet.course.id,
            occupation_uri=sheet.occupation.uri,
            language=sheet.language,
            text=text,
            source="model",
            model=self.backend.name,
            tokens=verdict.tokens,
        )

    def explain(self, sheets: Sequence[FactSheet]) -> list[Explanation]:
        """One explanation per sheet, in order; the model-eligible sheets go to the backend in one call."""
        results: list[Explanation | None] = [None] * len(sheets)
        eligible: list[int] = []
        for i, sheet in enumerate(sheets):
            if self.backend is None:
                results[i] = self.template(sheet, None)
            elif sheet.language not in self.backend.languages:
                results[i] = self.template(sheet, f"no model for language {sheet.language!r}")
            else:
                eligible.append(i)
        if eligible:
            assert self.backend is not None
            conversations = [messages(sheets[i]) for i in eligible]
            try:
                candidates = self.backend.generate(conversations, max_new_tokens=self.max_tokens)
            except BackendError as error:
                for i in eligible:
                    results[i] = self.template(sheets[i], f"backend error: {error}")
            else:
                if len(candidates) != len(eligible):
                    raise BackendError(f"{self.backend.name} answered {len(candidates)} of {len(eligible)}")
                for i, candidate in zip(eligible, candidates, strict=True):
                    results[i] = self.judge(sheets[i], candidate)
        done = [r for r in results if r is not None]
        for explanation in done:
            self.stats.add(explanation)
        return done

    def stream(self, sheets: Sequence[FactSheet], *, batch_size: int = 8) -> Iterator[Explanation]:
        """``explain`` batch by batch, yielding each explanation as soon as its batch is done."""
        for start in range(0, len(sheets), batch_size):
            yield from self.explain(sheets[start : start + batch_size])
