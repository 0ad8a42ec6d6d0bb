"""``Advisor``: the one entry point channels use (CLI chat, HTTP server, Telegram, evaluation replays).

It owns the compiled graph and its checkpointer; a conversation is a ``thread_id``. ``send`` runs a turn
and returns the final state; ``stream`` yields the turn's events as they happen (``token`` text deltas,
``candidates``, ``recommendations``, ``explanation``, then ``done`` with the state).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from langchain_core.messages import HumanMessage

from agent.context import AdvisorContext, Services, Understanding, get_services
from agent.graph import build
from agent.memory import open_checkpointer
from agent.nodes import apply_feedback
from agent.state import AdvisorState, Lang, Verdict
from craft.settings import Settings, get_settings


class UnknownCourse(LookupError):
    """Feedback on a course this conversation never showed."""


class Advisor:
    """Use as ``async with Advisor(settings) as advisor: state = await advisor.send("id", "hi")``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        services: Services | None = None,
        k: int = 5,
        explain: bool = True,
        understanding: Understanding | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.services = services or get_services(self.settings)
        understanding = understanding or self.settings.agent_understanding
        self.context = AdvisorContext(
            services=self.services, k=k, explain=explain, understanding=understanding
        )
        self._stack = AsyncExitStack()
        self.graph: Any = None
        self.checkpointer: Any = None

    async def __aenter__(self) -> Advisor:
        self.checkpointer = await self._stack.enter_async_context(open_checkpointer(self.settings))
        self.graph = build(self.checkpointer)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @staticmethod
    def config(conversation_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": conversation_id}}

    async def send(self, conversation_id: str, text: str, **context: Any) -> AdvisorState:
        """Run one turn; the conversation's state after it."""
        async for event in self.stream(conversation_id, text, **context):
            if event["event"] == "done":
                return event["state"]
        raise RuntimeError("the turn ended without a final state")  # pragma: no cover - graph always ends

    async def stream(self, conversation_id: str, text: str, **context: Any) -> AsyncIterator[dict[str, Any]]:
        """The turn's custom events as they are emitted, then ``{"event": "done", "state": AdvisorState}``."""
        run_context = (
            self.context if not context else AdvisorContext(**{**asdict_shallow(self.context), **context})
        )
        async for chunk in self.graph.astream(
            {"messages": [HumanMessage(content=text)]},
            self.config(conversation_id),
            context=run_context,
            stream_mode="custom",
        ):
            yield chunk
        yield {"event": "done", "state": await self.state(conversation_id)}

    async def create(self, conversation_id: str, *, language: Lang | None = None) -> AdvisorState:
        """Start a conversation (optionally in a fixed reply language) before its first message."""
        values: dict[str, Any] = {"language": language, "language_pinned": True} if language else {}
        await self.graph.aupdate_state(self.config(conversation_id), values or {"turn": 0}, as_node="respond")
        return await self.state(conversation_id)

    async def feedback(
        self, conversation_id: str, course_id: str, verdict: Verdict
    ) -> tuple[AdvisorState, bool]:
        """Record a verdict on a shown course outside a message (a button). Returns the state and whether
        the list should be refreshed (dislike/taken). ``UnknownCourse`` when it was never shown here."""
        state = await self.state(conversation_id)
        course = next((c for c in state.shown if c.course_id == course_id), None)
        if course is None:
            raise UnknownCourse(f"course {course_id!r} was not recommended in this conversation")
        update = apply_feedback(state, course, verdict)
        await self.graph.aupdate_state(self.config(conversation_id), update, as_node="respond")
        return await self.state(conversation_id), verdict != "like"

    async def state(self, conversation_id: str) -> AdvisorState:
        """The stored state (a fresh one for an unknown id)."""
        snapshot = await self.graph.aget_state(self.config(conversation_id))
        values = snapshot.values or {}
        return AdvisorState(**values) if values else AdvisorState()

    async def exists(self, conversation_id: str) -> bool:
        snapshot = await self.graph.aget_state(self.config(conversation_id))
        return bool(snapshot.values)

    async def delete(self, conversation_id: str) -> None:
        """Erase the conversation and everything in it (messages, profile, pasted CV text)."""
        await self.checkpointer.adelete_thread(conversation_id)


def asdict_shallow(context: AdvisorContext) -> dict[str, Any]:
    """The context's fields without deep-copying the loaded services (``dataclasses.asdict`` would)."""
    return {name: getattr(context, name) for name in context.__dataclass_fields__}


__all__ = ["Advisor", "UnknownCourse"]
