"""``craft eval --through agent``: the test occupations replayed as scripted conversations through the
advisor's public entry point (``agent.advisor.Advisor``), scored like any retrieval system.

Each query becomes: "I'd like to become a <occupation>" (picking the right one when the advisor offers
candidates), "I know <skills>" (the skills the harness removed from the query's gap, so both paths rank
for the same gap) or "nothing yet", and the advisor's list is the ranking. Turns without explanations and
with ``k`` courses. ``ReplayStats`` counts where a conversation went wrong (occupation not resolved, skills
understood differently), so a disagreement with the direct path can be traced to understanding or ranking.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from craft.settings import Settings
from knowledge.store import KnowledgeBase
from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse


@dataclass
class ReplayStats:
    conversations: int = 0
    occupation_missed: int = 0
    candidates_offered: int = 0
    skills_exact: int = 0
    skills_differ: int = 0
    turns: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "failures"} | {"examples": self.failures[:5]}


class AgentReplay(Retriever):
    """A ``Retriever`` whose ranking is what the advisor recommends in a scripted conversation."""

    name = "agent"

    def __init__(self, settings: Settings, kb: KnowledgeBase) -> None:
        from agent.advisor import Advisor

        self.kb = kb
        self.stats = ReplayStats()
        self.loop = asyncio.new_event_loop()
        conversation_settings = settings.model_copy(update={"checkpoint_url": ":memory:"})
        self.advisor = Advisor(conversation_settings, explain=False)
        self.loop.run_until_complete(self.advisor.__aenter__())

    def close(self) -> None:
        self.loop.run_until_complete(self.advisor.__aexit__(None, None, None))
        self.loop.close()

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        return self.loop.run_until_complete(self._replay(query, k))

    async def _replay(self, query: RetrievalQuery, k: int) -> list[ScoredCourse]:
        assert query.occupation_uri is not None
        lang = query.lang if query.lang in ("en", "de") else "en"
        uri = query.occupation_uri
        thread = f"eval-{uuid.uuid4().hex}"
        self.stats.conversations += 1
        label = self.kb.occupations[uri].label(lang)

        async def say(text: str) -> Any:
            self.stats.turns += 1
            return await self.advisor.send(thread, text, k=k, explain=False)

        state = await say(f"I'd like to become a {label}" if lang == "en" else f"Ich möchte {label} werden")
        if state.candidates:
            self.stats.candidates_offered += 1
            uris = [c.uri for c in state.candidates]
            if uri in uris:
                state = await say(str(uris.index(uri) + 1))
        if state.occupation is None or state.occupation.uri != uri:
            self.stats.occupation_missed += 1
            self.stats.failures.append(f"{label}: resolved to {state.occupation and state.occupation.label}")
            await self.advisor.delete(thread)
            return []
        gap = {g.uri for g in query.gap}
        have = [s for s, _ in self.kb.occupation_skills.get(uri, []) if s not in gap]
        if have:
            # one per line, answering the advisor's question: read as a list, each line linked on its own
            state = await say("\n".join(self.kb.skills[s].label(lang) for s in have))
            captured = {s.uri for s in state.skills_have}
            if captured == set(have):
                self.stats.skills_exact += 1
            else:
                self.stats.skills_differ += 1
        else:
            state = await say("nothing yet" if lang == "en" else "noch nichts")
        if not state.current:
            state = await say("show me courses" if lang == "en" else "zeig mir Kurse")
        await self.advisor.delete(thread)
        return [ScoredCourse(course_id=cid, score=1.0 / rank) for rank, cid in enumerate(state.current, 1)]
