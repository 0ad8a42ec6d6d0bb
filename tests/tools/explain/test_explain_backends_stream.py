"""Both explanation backends behind one interface: the local SmolLM2 decodes quoted titles only along the
allowed titles' token trie and streams its answer from a worker thread (errors and stalls reach the caller);
the OpenAI-compatible backend (langchain-openai) batches and streams against a mock HTTP transport; the
generator regenerates an invalid remote answer once before the template, and streams one explanation."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from craft.settings import get_settings
from tools.explain.backends import BackendError, ExplanationBackend, LocalBackend, OpenAIBackend, Titles
from tools.explain.constrain import QuoteTokens, TitleConstraint, TitleTrie
from tools.explain.facts import FactSheet
from tools.explain.generator import RETRY, Explanation, ExplanationGenerator
from tools.explain.prompt import Messages, messages
from tools.explain.validate import FaithfulnessChecker

ALLOWED = ["Introduction to Beekeeping", "Advanced Pastry Techniques", "Maritime Law Basics"]
OTHERS = ["Medieval Castle Architecture", "Organic Vegetable Gardening"]
# a user turn and an assistant prefill that make the model name a course in double quotes right away
ASK = "I want to become a data scientist. Recommend one online course and give its exact title in quotes."
NAME_A_COURSE: Messages = [
    {"role": "user", "content": ASK},
    {"role": "assistant", "content": 'I recommend the course "'},
]
_QUOTED = re.compile(r'"([^"]*)"')


def quoted_title(prefill: str, answer: str) -> str | None:
    """The span in double quotes that the prefill opened and the answer closed (None: never closed)."""
    match = _QUOTED.search(prefill + answer)
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def smol() -> Iterator[LocalBackend]:
    """The real SmolLM2-135M-Instruct (zero-shot) on one CPU thread: with two threads on a busy two-core
    machine OpenMP spin-waits and greedy decoding gets ~30x slower."""
    import torch

    from knowledge.models import prepare

    settings = get_settings()
    prepare(settings, [settings.llm_model])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield LocalBackend.from_registry(settings, adapter=None, batch_size=4)
    finally:
        torch.set_num_threads(threads)


def ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids)


# --- the trie and the logits processor (real tokenizer, no decoding) -------------------------------------
@pytest.mark.slow
def test_trie_prefixes_leaves_and_closing_quotes(smol: LocalBackend) -> None:
    tok = smol.tokenizer
    titles = [
        "Data Science Basics",
        "Data Science Basics for Managers",
        "Excel",
        'A "quoted" title',
        " Excel ",
    ]
    trie = TitleTrie(titles, tok)
    assert trie.titles == ["Data Science Basics", "Data Science Basics for Managers", "Excel"]
    path = ids(tok, "Data Science Basics")
    assert [trie.walk(path[:k]) is not None for k in range(len(path) + 1)] == [True] * (len(path) + 1)
    assert trie.walk(path[:1]).title is None  # a prefix, not a title
    basics = trie.walk(path)
    assert basics.title == "Data Science Basics" and basics.children  # a title that a longer one continues
    leaf = trie.walk(ids(tok, "Data Science Basics for Managers"))
    assert leaf.title == "Data Science Basics for Managers" and not leaf.children
    assert trie.walk(ids(tok, "Data Mining")) is None
    assert set(trie.root.children) == {ids(tok, "Data")[0], ids(tok, "Excel")[0]}
    assert not TitleTrie([], tok) and not TitleTrie(['"'], tok)

    quotes = QuoteTokens.of(tok)
    (quote,) = ids(tok, '"')
    space_quote, period_quote, comma_quote = (ids(tok, f"x{s}")[-1] for s in (' "', '".', '",'))
    assert {quote, space_quote} <= quotes.openers and quote in quotes.closers
    assert {period_quote, comma_quote} <= quotes.closers & quotes.dirty_openers
    assert space_quote not in quotes.closers and period_quote not in quotes.openers


@pytest.mark.slow
def test_the_trie_path_is_how_the_tokenizer_writes_a_title_after_a_quote(smol: LocalBackend) -> None:
    """The trie holds a title tokenized on its own: in running text after a quote the tokenizer produces the
    same ids (the quote never merges into a letter or digit); a title starting with punctuation merges into
    the quote (``Ġ".``), and the constraint still writes it, along the split path."""
    tok = smol.tokenizer
    for title in ["Data Science: A Beginner's Guide", "C++ for Beginners", "3D Printing 101", "Excel"]:
        in_text = ids(tok, f'Take the course "{title}" first.')
        alone = ids(tok, title)
        start = in_text.index(ids(tok, ' "')[0]) + 1
        assert in_text[start : start + len(alone)] == alone, title
        assert tok.decode(in_text[start + len(alone)]).startswith('"')
    merged = ids(tok, 'The course ".NET Basics" is')
    assert ids(tok, ".NET Basics")[0] not in merged  # the '.' went into the quote token
    constraint = TitleConstraint([TitleTrie([".NET Basics"], tok)], tok, prompt_length=0)
    written = ids(tok, 'The course "') + ids(tok, ".NET Basics") + ids(tok, '".')
    assert constraint.state(0, written) is None  # the title was followed through and closed
    assert tok.decode(written) == 'The course ".NET Basics".'
    assert constraint.state(0, merged[:3]) is not None  # ' ".' opens a quote that cannot be followed


@pytest.mark.slow
def test_the_processor_masks_inside_quotes_only(smol: LocalBackend) -> None:
    import torch

    tok = smol.tokenizer
    tries = [TitleTrie(ALLOWED, tok), None, TitleTrie([], tok)]
    prompt = [7, 8]
    constraint = TitleConstraint(tries, tok, prompt_length=len(prompt))
    vocab = len(tok)

    def allowed_after(row: int, text: str) -> set[int]:
        generated = ids(tok, text) if text else []
        rows = [prompt + generated] * 3
        scores = constraint(torch.tensor(rows), torch.zeros(3, vocab))
        return set(torch.nonzero(scores[row] > float("-inf")).flatten().tolist())

    everything = set(range(vocab))
    dirty = set(constraint.quotes.dirty_openers)
    assert allowed_after(0, "You could take") == everything - dirty  # outside: only quote+text tokens go
    assert allowed_after(0, 'You could take "') == {ids(tok, t)[0] for t in ALLOWED}
    pastry = ids(tok, "Advanced Pastry Techniques")
    assert allowed_after(0, 'You could take "Advanced Pastry') == {pastry[len(ids(tok, "Advanced Pastry"))]}
    closed = allowed_after(0, 'You could take "Maritime Law Basics')
    assert closed == set(constraint.quotes.closers) and ids(tok, '"')[0] in closed
    assert allowed_after(0, 'You could take "Maritime Law Basics", then') == everything - dirty
    assert allowed_after(1, 'You could take "Something') == everything  # an unconstrained row
    assert allowed_after(2, "Take") == everything - dirty - set(constraint.quotes.openers)  # nothing quotable
    prefilled = TitleConstraint([tries[0]], tok, prompt_length=0, prefills=['The course "Maritime'])
    maritime = ids(tok, "Maritime Law Basics")
    assert prefilled.allowed(prefilled.state(0, [])) == [maritime[len(ids(tok, "Maritime"))]]


# --- decoding with the real SmolLM2 ------------------------------------------------------------------------
@pytest.mark.slow
def test_constrained_decoding_names_only_allowed_titles(smol: LocalBackend) -> None:
    prefill = NAME_A_COURSE[-1]["content"]
    free = smol.generate([NAME_A_COURSE], max_new_tokens=16)[0]
    free_title = quoted_title(prefill, free)
    assert free_title and free_title not in ALLOWED + OTHERS  # the model invents a title of its own
    short: Messages = [{"role": "user", "content": "Which course?"}, NAME_A_COURSE[1]]
    rows = smol.generate(
        [NAME_A_COURSE, NAME_A_COURSE, short], max_new_tokens=16, titles=[ALLOWED, None, OTHERS]
    )
    assert quoted_title(prefill, rows[0]) in ALLOWED
    assert quoted_title(prefill, rows[1]) not in ALLOWED + OTHERS  # the unconstrained row stays free
    assert quoted_title(prefill, rows[2]) in OTHERS  # each row its own titles (and a left-padded prompt)


@pytest.mark.slow
def test_stream_deltas_join_to_the_generated_answer(smol: LocalBackend) -> None:
    for titles in (None, ALLOWED):
        deltas = list(smol.stream(NAME_A_COURSE, max_new_tokens=16, titles=titles))
        batch_titles = None if titles is None else [titles]
        answer = smol.generate([NAME_A_COURSE], max_new_tokens=16, titles=batch_titles)[0]
        assert len(deltas) > 2 and all(deltas)
        assert "".join(deltas).strip() == answer
    assert quoted_title(NAME_A_COURSE[-1]["content"], "".join(deltas)) in ALLOWED


class _StubModel:
    """Stands in for the model inside the streaming worker: writes some text, then fails, stalls or runs
    until the stopping criteria say stop."""

    def __init__(self, tokenizer: Any, mode: str) -> None:
        self.tokenizer, self.mode = tokenizer, mode
        self.release = threading.Event()
        self.stopped = False

    def parameters(self) -> Iterator[Any]:
        import torch

        yield torch.zeros(1)

    def generate(self, **kwargs: Any) -> None:
        import torch

        streamer, prompt = kwargs["streamer"], kwargs["input_ids"]
        streamer.put(prompt)  # the prompt first, as generate does (skipped)
        if self.mode == "stall":
            self.release.wait(10)
            return
        for word in ["Hello", " there", " friend", "."] * (1 if self.mode == "fail" else 1000):
            streamer.put(torch.tensor(ids(self.tokenizer, word)))
            if kwargs["stopping_criteria"](prompt, None).all():
                self.stopped = True
                break
            time.sleep(0.002 if self.mode == "endless" else 0)
        if self.mode == "fail":
            raise RuntimeError("device lost")
        streamer.end()


@pytest.mark.slow
def test_stream_surfaces_worker_errors_and_stalls_and_stops_when_abandoned(smol: LocalBackend) -> None:
    tok = smol.tokenizer
    failing = LocalBackend(_StubModel(tok, "fail"), tok, name="stub")
    got: list[str] = []
    with pytest.raises(BackendError, match="stub failed while streaming: RuntimeError: device lost"):
        for delta in failing.stream(NAME_A_COURSE, max_new_tokens=8):
            got.append(delta)
    assert "".join(got) == "Hello there friend."  # what was written before the failure still arrived

    stalled_model = _StubModel(tok, "stall")
    stalled = LocalBackend(stalled_model, tok, name="stub", stream_timeout_s=0.3)
    with pytest.raises(BackendError, match=r"no streamed text for 0.3 s"):
        list(stalled.stream(NAME_A_COURSE, max_new_tokens=8))
    stalled_model.release.set()

    endless_model = _StubModel(tok, "endless")
    stream = LocalBackend(endless_model, tok, name="stub").stream(NAME_A_COURSE, max_new_tokens=8)
    assert next(stream) == "Hello "
    stream.close()  # the consumer goes away: the worker stops at its next step (close joins it)
    assert endless_model.stopped


# --- the OpenAI-compatible backend against a mock transport ----------------------------------------------
def _completion(content: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "explainer",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


def _sse(pieces: list[str]) -> bytes:
    def chunk(delta: dict[str, str], finish: str | None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "e", "choices": [choice]}
        return f"data: {json.dumps(body)}\n\n"

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": p}, None) for p in pieces] + [chunk({}, "stop"), "data: [DONE]\n\n"]
    return "".join(events).encode()


def fake_endpoint(answer: Callable[[dict[str, Any]], str], seen: list[dict[str, Any]]) -> httpx.Client:
    """An OpenAI-compatible server: JSON completions, or the answer word by word as server-sent events."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        body["authorization"] = request.headers.get("Authorization")
        seen.append(body)
        text = answer(body)
        if body.get("stream"):
            pieces = re.findall(r"\S+\s*|\s+", text)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=_sse(pieces))
        return httpx.Response(200, json=_completion(text))

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_openai_backend_batches_and_streams() -> None:
    seen: list[dict[str, Any]] = []
    client = fake_endpoint(lambda body: f" Answer to {body['messages'][-1]['content']}. ", seen)
    backend = OpenAIBackend(
        "http://vllm:8000/v1/", "explainer-lora", api_key="k", client=client, workers=2, max_retries=0
    )
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    assert backend.generate(conversations, max_new_tokens=40) == [f"Answer to q{i}." for i in range(3)]
    assert backend.generate([], max_new_tokens=40) == []
    assert {b["messages"][0]["content"] for b in seen} == {"q0", "q1", "q2"}
    first = seen[0]
    assert first["model"] == "explainer-lora" and first["max_tokens"] == 40 and first["temperature"] == 0
    assert first["authorization"] == "Bearer k" and not first["stream"]
    deltas = list(backend.stream(conversations[0], max_new_tokens=40))
    assert len(deltas) == 4 and "".join(deltas).strip() == "Answer to q0."
    assert seen[-1]["stream"] is True and seen[-1]["max_tokens"] == 40


def test_openai_backend_errors_become_backend_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "model crashed"}})

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    for handler, message in ((refuse, "500"), (unreachable, "Connection")):
        client = httpx.Client(transport=httpx.MockTransport(handler))
        backend = OpenAIBackend("http://vllm:8000/v1", "explainer", client=client, max_retries=0)
        with pytest.raises(BackendError, match=message):
            backend.generate([[{"role": "user", "content": "q"}]], max_new_tokens=5)
        with pytest.raises(BackendError, match=message):
            list(backend.stream([{"role": "user", "content": "q"}], max_new_tokens=5))


# --- the generator: constraint, regeneration, one streamed explanation ----------------------------------
@pytest.fixture(scope="module")
def sheets(real_sheets: list[FactSheet]) -> list[FactSheet]:
    english = [s for s in real_sheets if s.language == "en" and s.covered][:2]
    return [*english, next(s for s in real_sheets if s.language == "de")]


class TitleSpy(ExplanationBackend):
    """A constraining backend that records the titles it is given and quotes the first one."""

    constrains_titles = True

    def __init__(self) -> None:
        self.name, self.titles = "spy", []

    def generate(
        self,
        conversations: list[Messages],
        *,
        max_new_tokens: int,
        titles: list[Titles | None] | None = None,
    ) -> list[str]:
        assert titles is not None
        self.titles += titles
        return [f'"{t[1]}" is a good next step for you.' for t in titles if t]


@pytest.mark.data
def test_a_constraining_backend_gets_each_sheets_own_texts(
    sheets: list[FactSheet], checker: FaithfulnessChecker
) -> None:
    spy = TitleSpy()
    generator = ExplanationGenerator(checker, spy)
    out = generator.explain(sheets)
    english = sheets[:2]  # the German sheet goes to the template, not to the backend
    assert spy.titles == [s.allowed_texts() for s in english] and generator.retries == 0
    assert [t[1] for t in spy.titles] == [s.course.title for s in english]
    assert [e.source for e in out] == ["model", "model", "template"] and [e.attempts for e in out] == [
        1,
        1,
        0,
    ]


@pytest.mark.data
def test_remote_invalid_answer_is_regenerated_once_then_falls_back(
    sheets: list[FactSheet],
    checker: FaithfulnessChecker,
    foreign_skill: Callable[[FactSheet, str], str],
) -> None:
    sheet = sheets[0]
    invented = f'"{sheet.course.title}" fits you. It also teaches you to {foreign_skill(sheet, "en")}.'
    good = f'"{sheet.course.title}" is a good next step for you.'

    def run(second: str) -> tuple[Explanation, list[dict[str, Any]], ExplanationGenerator]:
        seen: list[dict[str, Any]] = []
        client = fake_endpoint(lambda body: invented if len(seen) == 1 else second, seen)
        backend = OpenAIBackend("http://vllm:8000/v1", "explainer", client=client, max_retries=0)
        generator = ExplanationGenerator(checker, backend, seed=2)
        return generator.explain([sheet])[0], seen, generator

    fallback, seen, generator = run(invented)
    assert len(seen) == 2 and fallback.source == "template" and fallback.attempts == 2
    assert "names skill" in (fallback.fallback_reason or "") and fallback.candidate == invented
    retry = seen[1]["messages"]
    assert retry[:2] == messages(sheet) and retry[2] == {"role": "assistant", "content": invented}
    assert retry[3]["content"].startswith(RETRY.split("{")[0]) and "names skill" in retry[3]["content"]
    assert generator.stats.regenerated == 1 and generator.stats.reasons["names skill"] == 1

    recovered, seen, generator = run(good)
    assert len(seen) == 2 and recovered.source == "model" and recovered.text == good
    assert recovered.attempts == 2 and generator.stats.model == 1 and generator.stats.regenerated == 1


@pytest.mark.data
def test_stream_one_yields_deltas_then_the_validated_explanation(
    sheets: list[FactSheet], checker: FaithfulnessChecker, foreign_skill: Callable[[FactSheet, str], str]
) -> None:
    sheet, german = sheets[0], sheets[2]
    good = f'"{sheet.course.title}" is a good next step for you.'
    seen: list[dict[str, Any]] = []
    backend = OpenAIBackend(
        "http://vllm:8000/v1", "explainer", client=fake_endpoint(lambda b: good, seen), languages=["en"]
    )
    generator = ExplanationGenerator(checker, backend)
    *deltas, final = list(generator.stream_one(sheet))
    assert len(deltas) > 3 and all(isinstance(d, str) for d in deltas) and "".join(deltas).strip() == good
    assert isinstance(final, Explanation) and final.source == "model" and final.text == good
    assert seen[0]["stream"] is True

    (only,) = list(generator.stream_one(german))  # a language the backend lacks: the template alone
    assert (
        isinstance(only, Explanation)
        and only.source == "template"
        and "no model for language" in str(only.fallback_reason)
    )
    assert generator.stats.model == 1 and generator.stats.template == 1

    invented = f"It also teaches you to {foreign_skill(sheet, 'en')}."
    seen.clear()
    bad = OpenAIBackend("http://vllm:8000/v1", "x", client=fake_endpoint(lambda b: invented, seen))
    *deltas, final = list(ExplanationGenerator(checker, bad).stream_one(sheet))
    assert "".join(deltas).strip() == invented and [b["stream"] for b in seen] == [True, False]
    assert isinstance(final, Explanation) and final.source == "template" and final.attempts == 2
    assert checker.check(final.text, sheet).ok


@pytest.mark.data
@pytest.mark.slow
def test_stream_one_on_the_local_model(
    smol: LocalBackend, sheets: list[FactSheet], checker: FaithfulnessChecker
) -> None:
    generator = ExplanationGenerator(checker, smol, max_tokens=24)
    *deltas, final = list(generator.stream_one(sheets[0]))
    written = "".join(str(d) for d in deltas).strip()
    assert deltas and isinstance(final, Explanation) and final.attempts == 1
    if final.source == "model":
        assert final.text == generator.trim(written)
    else:
        assert final.candidate == written and final.fallback_reason
    for title in _QUOTED.findall(written):
        assert title in sheets[0].allowed_texts()
    batched = generator.explain(sheets[:1])[0]  # the batched path decodes the same constrained answer
    assert (batched.text, batched.source, batched.candidate) == (final.text, final.source, final.candidate)
    assert generator.stats.total == 2
