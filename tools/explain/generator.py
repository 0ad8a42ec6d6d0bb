"""``ExplanationGenerator``: short grounded explanations for a batch of course cards, one backend call.

For each fact sheet the backend writes a candidate (``≤ max_tokens``); a candidate that runs over the budget
is cut back to its last complete sentence within it; the validator then checks it against the sheet. A
candidate that names something the sheet lacks, or is empty or cut off, is replaced by the grounded template
and the reason is kept, so the caller (the agent) can report how often output falls back. Sheets in a
language the backend does not write (German with the English SmolLM2 adapter) and every sheet when the
backend fails get the template directly.

Grounding happens twice where it can: the local backend decodes quoted spans only as the sheet's own texts
(its course title, occupation, skills: prefix-trie constrained decoding), so a named course is in the catalog
by construction; a remote backend cannot be constrained, so an invalid answer is asked for once more with
the validator's reason (``retries``) before the template takes over.

``stream`` yields the explanations batch by batch in input order, so cards can be shown first and their
explanations filled in as they come; ``stream_one`` yields one explanation's text as it is written, then
the validated ``Explanation`` that replaces it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.explain.backends import BackendError, ExplanationBackend, LocalBackend, OpenAIBackend
from tools.explain.facts import FactSheet
from tools.explain.prompt import Messages, messages
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
    attempts: int = Field(0, description="Backend answers asked for (a regeneration counts; 0: none).")


@dataclass
class FallbackStats:
    """Running counts since the generator was made (the agent reports the template share)."""

    model: int = 0
    template: int = 0
    regenerated: int = 0  # sheets whose first answer failed validation and were asked again
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


RETRY = (
    "That answer cannot be used: {reason}. Answer again in one or two short sentences, using only the facts "
    "given."
)


class ExplanationGenerator:
    """Backend candidates, validated, with the grounded template as fallback (see the module docstring)."""

    def __init__(
        self,
        checker: FaithfulnessChecker,
        backend: ExplanationBackend | None = None,
        *,
        max_tokens: int = MAX_TOKENS,
        seed: int = 0,
        retries: int | None = None,
    ) -> None:
        """``retries``: regenerations of an invalid answer before the template (default: the backend's
        ``regenerations``: one for a remote model, none for the constrained local one)."""
        self.backend = backend
        self.max_tokens = max_tokens
        self.seed = seed
        self.count_tokens = backend.count_tokens if backend is not None else checker.count_tokens
        self.checker = checker.with_counter(self.count_tokens, max_tokens)
        self.retries = retries if retries is not None else backend.regenerations if backend is not None else 0
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

    def template(
        self, sheet: FactSheet, reason: str | None, candidate: str | None = None, *, attempts: int = 0
    ) -> Explanation:
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
            attempts=attempts,
        )

    def trim(self, text: str) -> str:
        return trim_to_budget(text, self.count_tokens, self.max_tokens)

    def judge(self, sheet: FactSheet, candidate: str, *, attempts: int = 1) -> Explanation:
        """Keep the backend's ``candidate`` when valid, else the template with the reason."""
        text = self.trim(candidate)
        verdict = self.checker.check(text, sheet)
        if not verdict.ok:
            return self.template(sheet, verdict.reason, candidate, attempts=attempts)
        assert self.backend is not None
        return Explanation(
            course_id=sheet.course.id,
            occupation_uri=sheet.occupation.uri,
            language=sheet.language,
            text=text,
            source="model",
            model=self.backend.name,
            tokens=verdict.tokens,
            attempts=attempts,
        )

    def _unsupported(self, sheet: FactSheet) -> Explanation | None:
        """The template when ``sheet`` cannot go to the backend (none, or not in its languages), else None."""
        if self.backend is None:
            return self.template(sheet, None)
        if sheet.language not in self.backend.languages:
            return self.template(sheet, f"no model for language {sheet.language!r}")
        return None

    def titles(self, sheet: FactSheet) -> list[str] | None:
        """What the backend may quote for ``sheet`` (its own texts: the course title is the only course),
        or None when the backend cannot constrain decoding."""
        return sheet.allowed_texts() if self.backend is not None and self.backend.constrains_titles else None

    def retry_messages(self, sheet: FactSheet, failed: Explanation) -> Messages:
        """The sheet's prompt, the rejected answer and the validator's reason: the regeneration request."""
        return [
            *messages(sheet),
            {"role": "assistant", "content": failed.candidate or ""},
            {"role": "user", "content": RETRY.format(reason=failed.fallback_reason or "not valid")},
        ]

    def _generate(self, sheets: Sequence[FactSheet], conversations: Sequence[Messages]) -> list[str]:
        assert self.backend is not None
        titles = [self.titles(s) for s in sheets]
        kwargs = {"titles": titles} if self.backend.constrains_titles else {}
        candidates = self.backend.generate(conversations, max_new_tokens=self.max_tokens, **kwargs)
        if len(candidates) != len(conversations):
            raise BackendError(f"{self.backend.name} answered {len(candidates)} of {len(conversations)}")
        return candidates

    def _answer(
        self, sheets: Sequence[FactSheet], conversations: Sequence[Messages], *, attempt: int = 1
    ) -> list[Explanation]:
        """Judged backend answers, in one call per attempt; invalid ones are asked again (with the reason)
        until ``retries`` run out; a failing backend gives the template."""
        try:
            candidates = self._generate(sheets, conversations)
        except BackendError as error:
            return [self.template(s, f"backend error: {error}", attempts=attempt) for s in sheets]
        out = [self.judge(s, c, attempts=attempt) for s, c in zip(sheets, candidates, strict=True)]
        again = [k for k, e in enumerate(out) if e.source == "template"]
        if again and attempt <= self.retries:
            self.stats.regenerated += len(again)
            retried = self._answer(
                [sheets[k] for k in again],
                [self.retry_messages(sheets[k], out[k]) for k in again],
                attempt=attempt + 1,
            )
            for k, explanation in zip(again, retried, strict=True):
                out[k] = explanation
        return out

    def explain(self, sheets: Sequence[FactSheet]) -> list[Explanation]:
        """One explanation per sheet, in order; the model-eligible sheets go to the backend in one call."""
        results: list[Explanation | None] = [self._unsupported(s) for s in sheets]
        eligible = [i for i, r in enumerate(results) if r is None]
        if eligible:
            answers = self._answer([sheets[i] for i in eligible], [messages(sheets[i]) for i in eligible])
            for i, explanation in zip(eligible, answers, strict=True):
                results[i] = explanation
        done = [r for r in results if r is not None]
        for explanation in done:
            self.stats.add(explanation)
        return done

    def stream(self, sheets: Sequence[FactSheet], *, batch_size: int = 8) -> Iterator[Explanation]:
        """``explain`` batch by batch, yielding each explanation as soon as its batch is done."""
        for start in range(0, len(sheets), batch_size):
            yield from self.explain(sheets[start : start + batch_size])

    def stream_one(self, sheet: FactSheet) -> Iterator[str | Explanation]:
        """Text deltas of ``sheet``'s explanation as the backend writes them, then the final ``Explanation``:
        its text replaces the streamed one (trimmed, regenerated or the template when the stream failed
        validation). Without a backend, or in a language it lacks: only the template ``Explanation``."""
        final = self._unsupported(sheet)
        if final is None:
            final = yield from self._stream_model(sheet)
        self.stats.add(final)
        yield final

    def _stream_model(self, sheet: FactSheet) -> Generator[str, None, Explanation]:
        assert self.backend is not None
        titles = self.titles(sheet)
        kwargs = {"titles": titles} if titles is not None else {}
        pieces: list[str] = []
        try:
            for delta in self.backend.stream(messages(sheet), max_new_tokens=self.max_tokens, **kwargs):
                pieces.append(delta)
                yield delta
        except BackendError as error:
            return self.template(sheet, f"backend error: {error}", attempts=1)
        first = self.judge(sheet, "".join(pieces).strip())
        if first.source == "model" or self.retries < 1:
            return first
        self.stats.regenerated += 1  # not streamed: the caller shows the final text in place of the stream
        return self._answer([sheet], [self.retry_messages(sheet, first)], attempt=2)[0]
