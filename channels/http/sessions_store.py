"""The session registry: which conversation ids exist, through which channel, for whom (``user_ref`` links one
person's sessions across channels), in which language, last seen when. The id is the capability for that
session's endpoints, so an id missing here is answered 404 whatever the checkpointer holds."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.http.db import SqliteStore, from_text, now, to_text


def new_session_id() -> str:
    """192 random bits, URL-safe: unguessable, so the id alone may grant access to its session."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class SessionRecord:
    id: str
    created: datetime
    last_seen: datetime
    channel: str
    user_ref: str | None
    language: str | None
    turns: int


class SessionStore(SqliteStore):
    """``async with SessionStore(path) as sessions: record = await sessions.create(channel="widget")``."""

    schema = """
    CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        channel TEXT NOT NULL,
        user_ref TEXT,
        language TEXT,
        turns INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS sessions_user_ref ON sessions (user_ref);
    CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions (last_seen);
    """

    async def create(
        self, *, channel: str = "api", user_ref: str | None = None, language: str | None = None
    ) -> SessionRecord:
        """A new session with a fresh unguessable id."""
        return await self.ensure(new_session_id(), channel=channel, user_ref=user_ref, language=language)

    async def ensure(
        self, session_id: str, *, channel: str, user_ref: str | None = None, language: str | None = None
    ) -> SessionRecord:
        """Register ``session_id`` unless it exists (channels with ids of their own, e.g. Telegram chats)."""
        moment = to_text(now())
        await self.conn.execute(
            "INSERT OR IGNORE INTO sessions (id, created, last_seen, channel, user_ref, language) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, moment, moment, channel, user_ref, language),
        )
        await self.conn.commit()
        record = await self.get(session_id)
        assert record is not None
        return record

    async def get(self, session_id: str) -> SessionRecord | None:
        async with self.conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)) as cursor:
            row = await cursor.fetchone()
        return _record(row) if row else None

    async def touch(self, session_id: str, *, turn: bool = False, language: str | None = None) -> None:
        """Mark the session seen now; ``turn`` counts a message, ``language`` records the reply language."""
        await self.conn.execute(
            "UPDATE sessions SET last_seen = ?, turns = turns + ?, language = COALESCE(?, language) "
            "WHERE id = ?",
            (to_text(now()), int(turn), language, session_id),
        )
        await self.conn.commit()

    async def delete(self, session_id: str) -> bool:
        cursor = await self.conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        await self.conn.commit()
        return cursor.rowcount > 0

    async def list(
        self,
        *,
        user_ref: str | None = None,
        channel: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionRecord]:
        """Most recently seen first."""
        where, args = _where(user_ref, channel)
        async with self.conn.execute(
            f"SELECT * FROM sessions{where} ORDER BY last_seen DESC, id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ) as cursor:
            rows = await cursor.fetchall()
        return [_record(row) for row in rows]

    async def count(self, *, user_ref: str | None = None, channel: str | None = None) -> int:
        where, args = _where(user_ref, channel)
        async with self.conn.execute(f"SELECT COUNT(*) FROM sessions{where}", args) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0


def _where(user_ref: str | None, channel: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses, args = [], []
    if user_ref is not None:
        clauses.append("user_ref = ?")
        args.append(user_ref)
    if channel is not None:
        clauses.append("channel = ?")
        args.append(channel)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def _record(row: Any) -> SessionRecord:
    return SessionRecord(
        id=row["id"],
        created=from_text(row["created"]),
        last_seen=from_text(row["last_seen"]),
        channel=row["channel"],
        user_ref=row["user_ref"],
        language=row["language"],
        turns=row["turns"],
    )
