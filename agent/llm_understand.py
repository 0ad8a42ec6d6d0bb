"""The LLM understanding path: an instruction-following chat model (e.g. Llama-3-8B-Instruct behind vLLM's
OpenAI-compatible API) reads the message into the same ``TurnUpdate`` the rule parser produces, through
tool calling / structured output. Its answer is validated by pydantic; anything invalid, or any transport
error, falls back to the rules — the conversation never depends on the model behaving."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agent.prompts import UNDERSTAND_SYSTEM, understand_context
from agent.state import AdvisorState
from agent.updates import TurnUpdate

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

MAX_LLM_CHARS = 6000  # longer messages (pasted CVs) are read by the rules: the model's window is small


async def llm_parse(model: BaseChatModel, text: str, state: AdvisorState) -> TurnUpdate | None:
    """The model's ``TurnUpdate`` for ``text``, or None (the caller uses the rules)."""
    if len(text) > MAX_LLM_CHARS:
        return None
    messages = [
        ("system", UNDERSTAND_SYSTEM),
        ("system", understand_context(state)),
        ("human", text),
    ]
    try:
        structured = model.with_structured_output(TurnUpdate, include_raw=True)
        result = await structured.ainvoke(messages)
    except Exception as error:  # any backend failure must not end the turn
        log.warning("LLM understanding failed (%s); using the rules", type(error).__name__)
        return None
    parsed = result.get("parsed") if isinstance(result, dict) else result
    if isinstance(parsed, TurnUpdate):
        return parsed
    if isinstance(parsed, dict):
        try:
            return TurnUpdate.model_validate(parsed)
        except ValidationError:
            pass
    log.warning(
        "LLM understanding gave no valid TurnUpdate (%s); using the rules", result.get("parsing_error")
    )
    return None


def chat_model_from_settings(settings: object) -> BaseChatModel | None:
    """The configured OpenAI-compatible chat model (vLLM), or None when none is configured."""
    from langchain_openai import ChatOpenAI

    base_url = getattr(settings, "openai_base_url", None)
    model = getattr(settings, "openai_model", None)
    if not base_url or not model:
        return None
    return ChatOpenAI(
        base_url=base_url,
        api_key=getattr(settings, "openai_api_key", "EMPTY"),
        model=model,
        temperature=0,
        timeout=getattr(settings, "http_timeout_s", 30.0),
        max_retries=1,
    )
