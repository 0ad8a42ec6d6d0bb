"""Running advisor turns for the routes: one turn at a time per session (two tabs sending at once would
interleave checkpoints), each in a task of its own so a client that goes away mid-stream never cuts a turn
in half: the turn finishes and its state is saved whole, whoever is still listening."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from agent.advisor import Advisor
from agent.state import AdvisorState, ShownCourse
from channels.http.errors import INTERNAL_MESSAGE, UNAVAILABLE_MESSAGE, is_unavailable
from channels.http.metrics import Metrics
from channels.http.schemas import CandidateOut, Profile, RecommendationOut, TurnOut
from channels.http.sessions_store import SessionRecord, SessionStore
from craft.settings import Settings

log = logging.getLogger("craft.http")

Mode = Literal["json", "sse"]


@dataclass(frozen=True)
class TurnEvent:
    """``name`` is the SSE event name; ``data`` is JSON-ready (``TurnOut`` for ``done``)."""

    name: str
    data: Any


@dataclass(frozen=True)
class TurnFailed:
    status: int
    code: str
    message: str


def translate(event: dict[str, Any]) -> TurnEvent | None:
    """An advisor stream event in the API's shapes (cards as ``RecommendationOut``); None: not forwarded."""
    kind = event["event"]
    if kind == "token":
        return TurnEvent("token", {"text": event["text"]})
    if kind == "candidates":
        items = [CandidateOut(uri=c["uri"], label=c["label"], score=c["score"]) for c in event["items"]]
        return TurnEvent("candidates", [c.model_dump(mode="json") for c in items])
    if kind == "recommendations":
        cards = [RecommendationOut.from_shown(ShownCourse.model_validate(c)) for c in event["items"]]
        return TurnEvent("recommendations", [c.model_dump(mode="json") for c in cards])
    if kind == "explanation":
        data = {"course_id": event["course_id"], "text": event["text"], "source": event.get("source")}
        return TurnEvent("explanation", data)
    return None


def session_tag(session_id: str) -> str:
    """What logs show instead of the id: the id is a capability, a log reader must not be able to use it."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:10]


class TurnRunner:
    def __init__(
        self, advisor: Advisor, sessions: SessionStore, metrics: Metrics, settings: Settings
    ) -> None:
        self.advisor, self.sessions, self.metrics, self.settings = advisor, sessions, metrics, settings
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.tasks: set[asyncio.Task[None]] = set()

    def lock(self, session_id: str) -> asyncio.Lock:
        """The session's lock (turns, feedback and deletion of one session never overlap)."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    async def events(
        self, record: SessionRecord, text: str, mode: Mode
    ) -> AsyncIterator[TurnEvent | TurnFailed]:
        """The turn's events as they happen: ``token``, ``candidates``, ``recommendations``, ``explanation``,
        then ``profile`` and ``done``; or a ``TurnFailed`` that ends it."""
        queue: asyncio.Queue[TurnEvent | TurnFailed | None] = asyncio.Queue()
        task = asyncio.create_task(self._run(record, text, mode, queue))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        while (item := await queue.get()) is not None:
            yield item

    async def run(self, record: SessionRecord, text: str) -> TurnOut | TurnFailed:
        """The whole turn at once (the JSON response)."""
        result: TurnOut | TurnFailed = TurnFailed(500, "internal", INTERNAL_MESSAGE)
        async for item in self.events(record, text, "json"):
            if isinstance(item, TurnFailed):
                result = item
            elif item.name == "done":
                result = item.data
        return result

    async def drain(self, timeout: float) -> None:
        """Let turns in flight finish (shutdown) so none is cut between its nodes' checkpoints."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)

    async def _run(
        self,
        record: SessionRecord,
        text: str,
        mode: Mode,
        queue: asyncio.Queue[TurnEvent | TurnFailed | None],
    ) -> None:
        start = time.perf_counter()
        outcome = "ok"
        state: AdvisorState | None = None
        try:
            async with self.lock(record.id):
                showed_list = False
                async for event in self.advisor.stream(record.id, text):
                    if event["event"] == "done":
                        state = event["state"]
                    elif (translated := translate(event)) is not None:
                        showed_list = showed_list or translated.name == "recommendations"
                        queue.put_nowait(translated)
                if state is None:  # pragma: no cover - Advisor.stream always ends with done
                    raise RuntimeError("the turn ended without a final state")
                await self.sessions.touch(record.id, turn=True, language=state.language)
            profile = Profile.from_state(state)
            by_id = {c.course_id: c for c in state.shown}
            shown = (
                [RecommendationOut.from_shown(by_id[i]) for i in state.current if i in by_id]
                if showed_list
                else []
            )
            queue.put_nowait(TurnEvent("profile", profile.model_dump(mode="json")))
            queue.put_nowait(
                TurnEvent("done", TurnOut(reply=state.reply, profile=profile, recommendations=shown))
            )
        except Exception as error:
            if is_unavailable(error):
                outcome = "unavailable"
                log.warning(
                    "turn session=%s: backing service unavailable (%s)",
                    session_tag(record.id),
                    type(error).__name__,
                )
                queue.put_nowait(TurnFailed(503, "unavailable", UNAVAILABLE_MESSAGE))
            else:
                outcome = "error"
                log.error("turn session=%s failed", session_tag(record.id), exc_info=error)
                queue.put_nowait(TurnFailed(500, "internal", INTERNAL_MESSAGE))
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.turns.labels(self.metrics.channel(record.channel), mode, outcome).inc()
            self.metrics.turn_latency.labels(mode).observe(elapsed)
            said = f" text={text!r}" if self.settings.log_message_text else ""
            log.info(
                "turn session=%s channel=%s mode=%s outcome=%s phase=%s chars=%d %.0fms%s",
                session_tag(record.id),
                record.channel,
                mode,
                outcome,
                state.phase.value if state else "-",
                len(text),
                elapsed * 1000,
                said,
            )
            queue.put_nowait(None)
