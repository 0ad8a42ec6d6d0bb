"""Conversation memory: a LangGraph checkpointer keyed by conversation id (the graph's ``thread_id``).

SQLite (embedded, one file) by default; PostgreSQL when ``checkpoint_url`` is a ``postgresql://`` URL. The
serializer is told exactly which of our types it may revive from a checkpoint (LangGraph's msgpack
allow-list), so a tampered checkpoint cannot instantiate anything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from agent import state as _state
from craft.settings import Settings

ALLOWED_TYPES = [
    ("agent.state", name)
    for name in (
        "Phase", "OccupationRef", "OccupationCandidate", "KnownSkill", "SkippedSkill", "GapItem",
        "Preferences",
        "Covered", "ShownCourse", "PathStep", "Coverage",
    )
    if hasattr(_state, name)
]  # fmt: skip


def serializer() -> JsonPlusSerializer:
    return JsonPlusSerializer(allowed_msgpack_modules=ALLOWED_TYPES)


class CheckpointConfigError(ValueError):
    """``checkpoint_url`` names no supported store."""


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[Any]:
    """The async checkpointer for ``settings.checkpoint_url``, set up and closed with the context."""
    url = settings.checkpoint_url
    if url.startswith("sqlite:///") or url == ":memory:":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = ":memory:" if url == ":memory:" else url.removeprefix("sqlite:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        import aiosqlite

        async with aiosqlite.connect(path) as conn:
            saver = AsyncSqliteSaver(conn, serde=serializer())
            await saver.setup()
            yield saver
    elif url.startswith(("postgresql://", "postgres://")):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(url, serde=serializer()) as saver:
            await saver.setup()
            yield saver
    else:
        raise CheckpointConfigError(
            f"CRAFT_CHECKPOINT_URL must start with sqlite:/// or postgresql://, got {url.split(':')[0]!r}"
        )
