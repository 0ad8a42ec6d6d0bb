"""Where explanation text comes from: a local causal LM (SmolLM2 + the trained LoRA adapter, through the
model registry) or any OpenAI-compatible chat endpoint (vLLM serving the same adapter with --enable-lora, or a
larger teacher model), behind one interface: a batch of chat conversations in, one answer each out
(``generate``), or one conversation's answer as text deltas (``stream``).

Only the local backend can constrain decoding: with ``titles`` its quoted spans are allowed titles by
construction (``tools.explain.constrain``); a remote answer is checked afterwards by the generator.
"""

from __future__ import annotations

import os
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.models import prepared_base
from tools.explain.prompt import PROMPT_VERSION, Messages
from tools.explain.templates import approx_tokens

if TYPE_CHECKING:
    from craft.settings import Settings
    from knowledge.models import ModelManifest
    from tools.explain.constrain import QuoteTokens

ADAPTER_FORMAT = "peft-lora"
STAGE = "explainer"
Titles = Sequence[str]


class BackendError(RuntimeError):
    """The backend could not answer (endpoint down, bad response, model missing): callers fall back."""


class ExplanationBackend(ABC):
    """A batch of chat conversations in, one answer per conversation out; or one answer as text deltas."""

    name: str = "backend"
    languages: frozenset[str] = frozenset({"en"})
    constrains_titles: bool = False  # whether ``titles`` is enforced while decoding (else ignored)
    # how often the generator asks again, with the validator's reason, for an answer that failed validation:
    # worth it only for a model that can act on the feedback (not a greedy small model, which would repeat)
    regenerations: int = 0

    @abstractmethod
    def generate(
        self,
        conversations: Sequence[Messages],
        *,
        max_new_tokens: int,
        titles: Sequence[Titles | None] | None = None,
    ) -> list[str]:
        """One stripped answer per conversation; ``titles[i]``: the strings conversation ``i`` may quote."""

    def stream(
        self, conversation: Messages, *, max_new_tokens: int, titles: Titles | None = None
    ) -> Iterator[str]:
        """Text deltas of one answer; joined and stripped they equal ``generate([conversation])[0]``. This
        default yields the whole answer at once (for backends that cannot stream)."""
        kwargs: dict[str, Any] = {} if titles is None else {"titles": [titles]}
        answer = self.generate([conversation], max_new_tokens=max_new_tokens, **kwargs)[0]
        if answer:
            yield answer

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


class LocalBackend(ExplanationBackend):
    """A transformers causal LM (optionally wrapped by a peft adapter); batched greedy decoding, streaming
    through a worker thread, and quoted titles constrained to the allowed ones."""

    constrains_titles = True

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        languages: Sequence[str] = ("en",),
        batch_size: int = 16,
        stream_timeout_s: float = 120.0,
    ) -> None:
        """``stream_timeout_s``: the longest wait for the next streamed piece before giving up (a stuck
        worker must not hang the caller)."""
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.languages = frozenset(languages)
        self.batch_size = batch_size
        self.stream_timeout_s = stream_timeout_s
        self.tokenizer.padding_side = "left"  # generation continues from the right edge of every row
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._quotes: QuoteTokens | None = None

    @classmethod
    def from_registry(
        cls, settings: Settings, *, adapter: str | None = STAGE, batch_size: int = 16
    ) -> LocalBackend:
        """The trained adapter ``adapter`` on its base when registered, else the base ``settings.llm_model``
        zero-shot (``adapter=None`` forces the base)."""
        from knowledge.models import ModelMissing, resolve

        if adapter is not None:
            try:
                folder, manifest = resolve(settings, adapter)
            except ModelMissing:
                pass
            else:
                return cls.from_adapter(settings, folder, manifest, batch_size=batch_size)
        folder, manifest = prepared_base(settings, settings.llm_model)
        model, tokenizer = load_causal_lm(folder, cpu_dtype=settings.llm_cpu_dtype)
        return cls(model, tokenizer, name=manifest.name, languages=manifest.languages, batch_size=batch_size)

    @classmethod
    def from_adapter(
        cls, settings: Settings, folder: Path, manifest: ModelManifest, *, batch_size: int = 16
    ) -> LocalBackend:
        from peft import PeftModel

        if manifest.format != ADAPTER_FORMAT:
            raise BackendError(f"{manifest.name} is {manifest.format!r}, not an {ADAPTER_FORMAT} adapter")
        version = manifest.config.get("prompt_version")
        if version != PROMPT_VERSION:
            raise BackendError(
                f"{manifest.name} was trained on prompt version {version!r}, this code prompts version "
                f"{PROMPT_VERSION!r}; retrain with `craft train {STAGE}`"
            )
        base_folder, _ = prepared_base(settings, manifest.base_model)
        model, tokenizer = load_causal_lm(base_folder, cpu_dtype=settings.llm_cpu_dtype)
        # merged into the base weights: generation at the base model's speed
        model = PeftModel.from_pretrained(model, str(folder), local_files_only=True).merge_and_unload()
        model.eval()
        return cls(model, tokenizer, name=manifest.name, languages=manifest.languages, batch_size=batch_size)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def prompts(self, conversations: Sequence[Messages]) -> list[str]:
        """Chat-template prompts; a conversation ending in an assistant turn is continued (a prefill)."""
        return [
            self.tokenizer.apply_chat_template(
                list(c),
                tokenize=False,
                add_generation_prompt=not _prefill(c),
                continue_final_message=bool(_prefill(c)),
            )
            for c in conversations
        ]

    def constraint(
        self, conversations: Sequence[Messages], titles: Sequence[Titles | None] | None, prompt_length: int
    ) -> list[Any]:
        """The logits processors for one batch: the title constraint when any row has titles, else none."""
        if titles is None or all(t is None for t in titles):
            return []
        from tools.explain.constrain import QuoteTokens, TitleConstraint, TitleTrie

        if len(titles) != len(conversations):
            raise ValueError(f"{len(titles)} title lists for {len(conversations)} conversations")
        if self._quotes is None:
            self._quotes = QuoteTokens.of(self.tokenizer)
        tries = [None if t is None else TitleTrie(t, self.tokenizer) for t in titles]
        prefills = [_prefill(c) for c in conversations]
        return [
            TitleConstraint(
                tries, self.tokenizer, prompt_length=prompt_length, prefills=prefills, quotes=self._quotes
            )
        ]

    def _generate_kwargs(
        self,
        conversations: Sequence[Messages],
        titles: Sequence[Titles | None] | None,
        max_new_tokens: int,
    ) -> dict[str, Any]:
        """``model.generate`` arguments of one batch: inputs, greedy decoding, the title constraint."""
        from transformers import LogitsProcessorList

        device = next(self.model.parameters()).device
        batch = self.tokenizer(
            self.prompts(conversations), return_tensors="pt", padding=True, add_special_tokens=False
        ).to(device)
        processors = self.constraint(conversations, titles, batch["input_ids"].shape[1])
        return {
            **batch,
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
            "logits_processor": LogitsProcessorList(processors) if processors else None,
        }

    def generate(
        self,
        conversations: Sequence[Messages],
        *,
        max_new_tokens: int,
        titles: Sequence[Titles | None] | None = None,
    ) -> list[str]:
        import torch

        out: list[str] = []
        for start in range(0, len(conversations), self.batch_size):
            chunk = conversations[start : start + self.batch_size]
            chunk_titles = titles[start : start + self.batch_size] if titles is not None else None
            kwargs = self._generate_kwargs(chunk, chunk_titles, max_new_tokens)
            with torch.inference_mode():
                generated = self.model.generate(**kwargs)
            new = generated[:, kwargs["input_ids"].shape[1] :]
            out += [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return out

    def stream(
        self, conversation: Messages, *, max_new_tokens: int, titles: Titles | None = None
    ) -> Iterator[str]:
        """``model.generate`` in a worker thread feeding a ``TextIteratorStreamer``; an error in the worker
        (or no text for ``stream_timeout_s``) is raised here as ``BackendError``, and a consumer that stops
        early stops the worker at its next step."""
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        kwargs = self._generate_kwargs([conversation], None if titles is None else [titles], max_new_tokens)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, timeout=self.stream_timeout_s, skip_special_tokens=True
        )
        cancel = threading.Event()
        failures: list[BaseException] = []
        kwargs["streamer"] = streamer
        kwargs["stopping_criteria"] = StoppingCriteriaList([_Cancelled(cancel)])

        def work() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as error:  # handed to the consumer, which re-raises it
                failures.append(error)
                streamer.end()  # flushes what was decoded and ends the consumer's loop

        worker = threading.Thread(target=work, name=f"stream-{self.name}", daemon=True)
        worker.start()
        try:
            for text in streamer:
                if text:
                    yield text
        except queue.Empty as error:
            raise BackendError(f"{self.name}: no streamed text for {self.stream_timeout_s:g} s") from error
        finally:
            cancel.set()
            worker.join(timeout=self.stream_timeout_s)
        if failures:
            error = failures[0]
            raise BackendError(
                f"{self.name} failed while streaming: {type(error).__name__}: {error}"
            ) from error


def _prefill(conversation: Messages) -> str:
    """The assistant text a conversation already starts its answer with ('' when it ends on a user turn)."""
    return conversation[-1]["content"] if conversation and conversation[-1]["role"] == "assistant" else ""


class _Cancelled:
    """A stopping criterion that ends generation once the streaming consumer has gone away."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )


def load_causal_lm(folder: Path, *, cpu_dtype: str = "float32") -> tuple[Any, Any]:
    """Model and tokenizer of a local HF folder: bf16 on a bf16 GPU, ``cpu_dtype`` on CPU (the server uses
    bfloat16: half the memory for ≈ 10 % more time on this CPU); never a hub call."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    if cuda:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    else:
        dtype = getattr(torch, cpu_dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    model.to("cuda" if cuda else "cpu").eval()
    if model.generation_config is not None:  # greedy: drop sampling defaults so generate() does not warn
        for key in ("temperature", "top_p", "top_k"):
            setattr(model.generation_config, key, None)
    return model, tokenizer


class OpenAIBackend(ExplanationBackend):
    """An OpenAI-compatible chat endpoint through langchain-openai's ``ChatOpenAI``: ``generate`` sends
    ``workers`` requests at a time (the server batches), ``stream`` reads server-sent events. ``model`` is
    the served model or, on vLLM with ``--enable-lora``, the LoRA adapter's name. ``client``: an
    ``httpx.Client`` to send through (tests pass one with a mock transport)."""

    regenerations = 1  # no constrained decoding here: an invalid answer is asked for once more

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        temperature: float = 0.0,
        workers: int = 8,
        languages: Sequence[str] = ("en", "de"),
        client: Any = None,
        max_retries: int = 1,
    ) -> None:
        """Without ``api_key`` an injected client's own ``Authorization`` header is kept (the OpenAI SDK would
        overwrite it with the key), else the key is ``EMPTY`` (vLLM without ``--api-key``)."""
        from langchain_openai import ChatOpenAI

        base = base_url.rstrip("/")
        self.url = base + "/chat/completions"
        self.model, self.name = model, f"openai:{model}"
        self.temperature, self.workers = temperature, workers
        self.languages = frozenset(languages)
        self.errors = _remote_errors()
        self.chat = ChatOpenAI(
            base_url=base,
            api_key=api_key or _bearer(client) or "EMPTY",
            model=model,
            temperature=temperature,
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=client,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> OpenAIBackend:
        if not settings.openai_base_url or not settings.openai_model:
            raise BackendError("no OpenAI-compatible endpoint: set CRAFT_OPENAI_BASE_URL, CRAFT_OPENAI_MODEL")
        return cls(
            settings.openai_base_url,
            settings.openai_model,
            api_key=settings.openai_api_key,
            timeout_s=settings.http_timeout_s,
            **kwargs,
        )

    def _bound(self, max_new_tokens: int) -> Any:
        """The chat model with this call's token budget. Sent as ``max_tokens``, the field every
        OpenAI-compatible server reads (ChatOpenAI would rename it ``max_completion_tokens``, which vLLM
        knows only since 0.6)."""
        return self.chat.bind(extra_body={"max_tokens": max_new_tokens})

    def _error(self, error: Exception) -> BackendError:
        return BackendError(f"{self.url} ({self.model}): {type(error).__name__}: {error}")

    def generate(
        self,
        conversations: Sequence[Messages],
        *,
        max_new_tokens: int,
        titles: Sequence[Titles | None] | None = None,
    ) -> list[str]:
        """``titles`` is ignored: a remote model cannot be constrained (the generator validates instead)."""
        if not conversations:
            return []
        try:
            answers = self._bound(max_new_tokens).batch(
                [list(c) for c in conversations], config={"max_concurrency": self.workers}
            )
        except self.errors as error:
            raise self._error(error) from error
        return [a.text.strip() for a in answers]

    def stream(
        self, conversation: Messages, *, max_new_tokens: int, titles: Titles | None = None
    ) -> Iterator[str]:
        try:
            for chunk in self._bound(max_new_tokens).stream(list(conversation)):
                if chunk.text:
                    yield chunk.text
        except self.errors as error:
            raise self._error(error) from error


def _bearer(client: Any) -> str | None:
    """The bearer token an httpx client already sends, if any."""
    header = str(client.headers.get("Authorization", "")) if client is not None else ""
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    return token or None


def _remote_errors() -> tuple[type[Exception], ...]:
    import httpx
    import openai

    # a malformed body surfaces from the SDK/langchain parsers as one of the builtin lookup/value errors
    return (openai.OpenAIError, httpx.HTTPError, KeyError, IndexError, TypeError, ValueError)
