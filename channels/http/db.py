"""The server's own small SQLite file (session registry, feedback events), kept apart from the conversation
checkpoints so listing sessions or exporting feedback never scans LangGraph's tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from craft.settings import Settings


def session_db_path(settings: Settings) -> str:
    """``settings.session_db``, else ``sessions.sqlite`` beside the SQLite checkpointer (in memory when the
    conversations are, so both vanish together), else ``var/sessions.sqlite``."""
    if settings.session_db:
        return settings.session_db
    url = settings.checkpoint_url
    if url == ":memory:":
        return ":memory:"
    if url.startswith("sqlite:///"):
        return str(Path(url.removeprefix("sqlite:///")).parent / "sessions.sqlite")
    return "var/sessions.sqlite"


def now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """ISO-8601 in UTC with a fixed width, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class SqliteStore:
    """One aiosqlite connection (its own thread) per store; WAL so the two stores share a file safely."""

    schema: str = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError(f"{type(self).__name__} is not open (use `async with`)")
        return self._conn

    async def open(self) -> Self:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path)
        self._conn.row_factory = aiosqlite.Row
        if self.path != ":memory:":
            await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA busy_timeout=5000")
        await self._conn.executescript(self.schema)
        await self._conn.commit()
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
