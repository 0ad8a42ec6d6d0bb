"""The generator keeps valid model text, falls back to the grounded template (with the reason) when the model
invents something, writes too much or fails, batches eligible sheets into one backend call, and reports the
fallback rate. The backend here is a deterministic fake with the real interface; the OpenAI-compatible
backend is exercised against a mock HTTP transport."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import httpx
import pytest

from tools.explain.backends import BackendError, ExplanationBackend, OpenAIBackend
from tools.explain.facts import FactSheet
from tools.explain.generator import ExplanationGenerator
from tools.explain.prompt import SYSTEM, Messages, messages
from tools.explain.templates import template_explanation
from tools.explain.validate import FaithfulnessChecker

pytestmark = [pytest.mark.data]


class FakeBackend(ExplanationBackend):
    """Answers from a function of the prompt; records every call."""

    def __init__(self, answer: object, languages: Sequence[str] = ("en",)) -> None:
        self.answer, self.name, self.languages = answer, "fake", frozenset(languages)
        self.calls: list[int] = []

    def generate(self, conversations: Sequence[Messages], *, max_new_tokens: int) -> list[str]:
        self.calls.append(len(conversations))
        if isinstance(self.answer, Exception):
            raise self.answer
        return [self.answer(c[-1]["content"]) for c in conversations]  # type: ignore[operator]


def _course_title(prompt: str) -> str:
    return prompt.split('Course: "', 1)[1].split('"', 1)[0]


@pytest.fixture(scope="module")
def sheets(real_sheets: list[FactSheet]) -> list[FactSheet]:
    english = [s for s in real_sheets if s.language == "en" and s.covered][:3]
    german = [s for s in real_sheets if s.language == "de"][:1]
    return [english[0], german[0], *english[1:]]


def test_valid_model_text_is_kept(sheets: list[FactSheet], checker: FaithfulnessChecker) -> None:
    backend = FakeBackend(lambda prompt: f'"{_course_title(prompt)}" is a good next step for you.')
    generator = ExplanationGenerator(checker, backend)
    out = generator.explain(sheets)
    assert backend.calls == [3]  # the English sheets, one batched call; German goes to the template
    assert [e.course_id for e in out] == [s.course.id for s in sheets]
    english = [e for e, s in zip(out, sheets, strict=True) if s.language == "en"]
    assert all(e.source == "model" and e.model == "fake" and e.fallback_reason is None for e in english)
    german = out[1]
    assert german.source == "template" and "no model for language 'de'" in (german.fallback_reason or "")
    assert generator.stats.model == 3 and generator.stats.template == 1
    assert generator.stats.fallback_rate == pytest.approx(0.25)


def test_unfaithful_model_text_falls_back_to_the_template(
    sheets: list[FactSheet], checker: FaithfulnessChecker, foreign_skill: Callable[[FactSheet, str], str]
) -> None:
    invented = f"It also teaches you to {foreign_skill(sheets[0], 'en')}."
    backend = FakeBackend(lambda prompt: f'"{_course_title(prompt)}" fits you well. {invented}')
    generator = ExplanationGenerator(checker, backend, seed=3)
    out = generator.explain(sheets[:1])[0]
    assert out.source == "template" and out.candidate and invented in out.candidate
    assert "names skill" in (out.fallback_reason or "")
    assert out.text == template_explanation(sheets[0], seed=3, count_tokens=backend.count_tokens)
    assert checker.check(out.text, sheets[0]).ok
    assert generator.stats.reasons["names skill"] == 1


def test_long_output_is_cut_to_whole_sentences(sheets: list[FactSheet], checker: FaithfulnessChecker) -> None:
    backend = FakeBackend(lambda prompt: "This course is a good fit. " + "It helps a lot " * 40)
    out = ExplanationGenerator(checker, backend).explain(sheets[:1])[0]
    assert out.source == "model" and out.text == "This course is a good fit."
    rambling = FakeBackend(lambda prompt: "It helps a lot " * 40)
    cut = ExplanationGenerator(checker, rambling).explain(sheets[:1])[0]
    assert cut.source == "template" and "too long" in (cut.fallback_reason or "")


def test_backend_failure_and_no_backend(sheets: list[FactSheet], checker: FaithfulnessChecker) -> None:
    failing = ExplanationGenerator(checker, FakeBackend(BackendError("endpoint down")))
    out = failing.explain(sheets)
    assert all(e.source == "template" for e in out)
    assert "backend error: endpoint down" in (out[0].fallback_reason or "")
    templates_only = ExplanationGenerator(checker, None).explain(sheets)
    assert all(e.source == "template" and e.fallback_reason is None for e in templates_only)


def test_stream_yields_batches_in_order(sheets: list[FactSheet], checker: FaithfulnessChecker) -> None:
    backend = FakeBackend(lambda prompt: "This course is a good fit.", languages=("en", "de"))
    generator = ExplanationGenerator(checker, backend)
    streamed = list(generator.stream(sheets, batch_size=2))
    assert [e.course_id for e in streamed] == [s.course.id for s in sheets]
    assert backend.calls == [2, 2]


def test_openai_backend_request_and_fallback(sheets: list[FactSheet], checker: FaithfulnessChecker) -> None:
    seen: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["Authorization"] == "Bearer secret"
        title = _course_title(body["messages"][-1]["content"])
        message = {"role": "assistant", "content": f' "{title}" suits you. '}  # servers always send the role
        return httpx.Response(200, json={"choices": [{"message": message}]})

    client = httpx.Client(transport=httpx.MockTransport(answer), headers={"Authorization": "Bearer secret"})
    backend = OpenAIBackend("http://vllm:8000/v1/", "explainer", client=client, workers=2)
    out = ExplanationGenerator(checker, backend).explain(sheets)
    assert len(seen) == 4 and all(e.source == "model" for e in out)
    assert seen[0]["model"] == "explainer" and seen[0]["max_tokens"] == 60 and seen[0]["temperature"] == 0
    assert seen[0]["messages"][0] == {"role": "system", "content": SYSTEM}
    assert {b["messages"][1]["content"] for b in seen} == {messages(s)[1]["content"] for s in sheets}
    assert out[0].text == f'"{sheets[0].course.title}" suits you.' and out[0].model == "openai:explainer"

    down = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(503)))
    broken = OpenAIBackend("http://vllm:8000/v1", "explainer", client=down)
    with pytest.raises(BackendError, match="503"):
        broken.generate([messages(sheets[0])], max_new_tokens=10)
    fallback = ExplanationGenerator(checker, broken).explain(sheets[:1])[0]
    assert fallback.source == "template" and "backend error" in (fallback.fallback_reason or "")
