"""A synchronous handle on one conversation of the real ``Advisor`` (tests and dialogue replays)."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.advisor import Advisor
from agent.context import get_services
from agent.state import AdvisorState
from craft.settings import Settings


class Conversation:
    """A synchronous handle on one conversation of a real ``Advisor`` (own event loop, in-memory memory)."""

    def __init__(self, settings: Settings, conversation_id: str = "test", **options: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.advisor = Advisor(settings, services=get_services(settings), **options)  # type: ignore[arg-type]
        self.loop.run_until_complete(self.advisor.__aenter__())
        self.id = conversation_id
        self.events: list[dict[str, Any]] = []

    def send(self, text: str) -> AdvisorState:
        async def run() -> AdvisorState:
            self.events = []
            async for event in self.advisor.stream(self.id, text):
                self.events.append(event)
            return self.events[-1]["state"]

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.advisor.__aexit__(None, None, None))
        self.loop.close()
