"""Where explanation text comes from: a local causal LM (SmolLM2 + the trained LoRA adapter, through the
model registry) or any OpenAI-compatible chat endpoint (vLLM serving the same adapter with --enable-lora, or a
larger teacher model). Both take a batch of chat conversations and return one answer each.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.models import prepared_base
from tools.explain.prompt import PROMPT_VERSION, Messages
from tools.explain.templates import approx_tokens

if TYPE_CHECKING:
    from craft.settings import Settings
    from knowledge.models import ModelManifest

ADAPTER_FORMAT = "peft-lora"
STAGE = "explainer"


class BackendError(RuntimeError):
    """The backend could not answer (endpoint down, bad response, model missing): callers fall back."""


class ExplanationBackend(ABC):
    """A batch of chat conversations in, one answer per conversation out."""

    name: str = "backend"
    languages: frozenset[str] = frozenset({"en"})

    @abstractmethod
    def generate(self, conversations: Sequence[Messages], *, max_new_tokens: int) -> list[str]: ...

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


class LocalBackend(ExplanationBackend):
    """A transformers causal LM (optionally wrapped by a peft adapter); batched greedy decoding."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        languages: Sequence[str] = ("en",),
        batch_size: int = 16,
    ) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.languages = frozenset(languages)
        self.batch_size = batch_size
        self.tokenizer.padding_side = "left"  # generation continues from the right edge of every row
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

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
        model, tokenizer = load_causal_lm(folder)
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
        model, tokenizer = load_causal_lm(base_folder)
        # merged into the base weights: generation at the base model's speed
        model = PeftModel.from_pretrained(model, str(folder), local_files_only=True).merge_and_unload()
        model.eval()
        return cls(model, tokenizer, name=manifest.name, languages=manifest.languages, batch_size=batch_size)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def prompts(self, conversations: Sequence[Messages]) -> list[str]:
        return [
            self.tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True)
            for c in conversations
        ]

    def generate(self, conversations: Sequence[Messages], *, max_new_tokens: int) -> list[str]:
        import torch

        texts = self.prompts(conversations)
        out: list[str] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            with torch.inference_mode():
                generated = self.model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=self.tokenizer.eos_token_id,
                )
            new = generated[:, batch["input_ids"].shape[1] :]
            out += [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return out


def load_causal_lm(folder: Path) -> tuple[Any, Any]:
    """Model and tokenizer of a local HF folder: bf16 on a bf16 GPU, float32 on CPU; never a hub call."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    model.to("cuda" if cuda else "cpu").eval()
    if model.generation_config is not None:  # greedy: drop sampling defaults so generate() does not warn
        for key in ("temperature", "top_p", "top_k"):
            setattr(model.generation_config, key, None)
    return model, tokenizer


class OpenAIBackend(ExplanationBackend):
    """``POST {base_url}/chat/completions`` per conversation, ``workers`` at a time (the server batches)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "EMPTY",
        timeout_s: float = 30.0,
        temperature: float = 0.0,
        workers: int = 8,
        languages: Sequence[str] = ("en", "de"),
        client: Any = None,
    ) -> None:
        import httpx

        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.name = model, f"openai:{model}"
        self.temperature, self.workers = temperature, workers
        self.languages = frozenset(languages)
        self.client = client or httpx.Client(
            timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"}
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

    def _one(self, conversation: Messages, max_new_tokens: int) -> str:
        import httpx

        body = {
            "model": self.model,
            "messages": list(conversation),
            "max_tokens": max_new_tokens,
            "temperature": self.temperature,
        }
        try:
            response = self.client.post(self.url, json=body)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as error:
            raise BackendError(f"{self.url} ({self.model}): {type(error).__name__}: {error}") from error
        return str(content or "").strip()

    def generate(self, conversations: Sequence[Messages], *, max_new_tokens: int) -> list[str]:
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(conversations))) as pool:
            return list(pool.map(lambda c: self._one(c, max_new_tokens), conversations))
