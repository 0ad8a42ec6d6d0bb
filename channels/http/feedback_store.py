"""Feedback events for retraining: every verdict a user gives on a course, with the occupation it was for.
Append-only (a changed mind is a new event, the history is the signal); erased with its session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.http.db import SqliteStore, from_text, now, to_text


@dataclass(frozen=True)
class FeedbackEvent:
    id: int
    session_id: str
    user_ref: str | None
    occupation_uri: str | None
    course_id: str
    verdict: str
    reason: str | None
    created: datetime


class FeedbackStore(SqliteStore):
    """``async with FeedbackStore(path) as feedback: await feedback.add(...)``."""

    schema = """
    CREATE TABLE IF NOT EXISTS feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        user_ref TEXT,
        occupation_uri TEXT,
        course_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        reason TEXT,
        created TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS feedback_session ON feedback (session_id);
    """

    async def add(
        self,
        *,
        session_id: str,
        course_id: str,
        verdict: str,
        user_ref: str | None = None,
        occupation_uri: str | None = None,
        reason: str | None = None,
    ) -> FeedbackEvent:
        moment = now()
        cursor = await self.conn.execute(
            "INSERT INTO feedback (session_id, user_ref, occupation_uri, course_id, verdict, reason, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, user_ref, occupation_uri, course_id, verdict, reason, to_text(moment)),
        )
        await self.conn.commit()
        assert cursor.lastrowid is not None
        return FeedbackEvent(
            cursor.lastrowid, session_id, user_ref, occupation_uri, course_id, verdict, reason, moment
        )

    async def for_session(self, session_id: str) -> list[FeedbackEvent]:
        async with self.conn.execute(
            "SELECT * FROM feedback WHERE session_id = ? ORDER BY id", (session_id,)
        ) as cursor:
            return [_event(row) for row in await cursor.fetchall()]

    async def export(self, *, after_id: int = 0, limit: int = 1000) -> list[FeedbackEvent]:
        """Events with an id above ``after_id``, oldest first: page with the last id seen."""
        async with self.conn.execute(
            "SELECT * FROM feedback WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        ) as cursor:
            return [_event(row) for row in await cursor.fetchall()]

    async def delete_session(self, session_id: str) -> int:
        cursor = await self.conn.execute("DELETE FROM feedback WHERE session_id = ?", (session_id,))
        await self.conn.commit()
        return cursor.rowcount


def _event(row: Any) -> FeedbackEvent:
    return FeedbackEvent(
        id=row["id"],
        session_id=row["session_id"],
        user_ref=row["user_ref"],
        occupation_uri=row["occupation_uri"],
        course_id=row["course_id"],
        verdict=row["verdict"],
        reason=row["reason"],
        created=from_text(row["created"]),
    )
