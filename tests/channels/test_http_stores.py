"""The session registry and the feedback event log on a real SQLite file: create/ensure, touch, list by
person and channel, export pages, deletion, and both surviving a reopen (a server restart)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from channels.http.db import session_db_path
from channels.http.feedback_store import FeedbackStore
from channels.http.sessions_store import SessionStore, new_session_id
from craft.settings import Settings


def test_session_ids_are_long_random_and_url_safe() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and i.replace("-", "").replace("_", "").isalnum() for i in ids)


def test_session_db_defaults_next_to_the_checkpointer(tmp_path: Path) -> None:
    assert session_db_path(Settings(checkpoint_url=f"sqlite:///{tmp_path}/c.sqlite")) == str(
        tmp_path / "sessions.sqlite"
    )
    assert session_db_path(Settings(checkpoint_url=":memory:")) == ":memory:"
    assert session_db_path(Settings(checkpoint_url="postgresql://db/craft")) == "var/sessions.sqlite"
    assert session_db_path(Settings(session_db="/x/y.sqlite")) == "/x/y.sqlite"


def test_session_registry(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")

    async def run() -> None:
        async with SessionStore(path) as store:
            a = await store.create(channel="widget", user_ref="p1", language="de")
            b = await store.create(channel="telegram", user_ref="p1")
            c = await store.ensure("telegram-42", channel="telegram")
            assert (await store.ensure("telegram-42", channel="other")).channel == "telegram"  # kept
            assert a.turns == 0 and a.created == a.last_seen and a.language == "de"
            await store.touch(b.id, turn=True, language="en")
            await store.touch(b.id, turn=True)
            b2 = await store.get(b.id)
            assert b2 is not None and b2.turns == 2 and b2.language == "en" and b2.last_seen > b.last_seen
            assert [r.id for r in await store.list()] == [b.id, c.id, a.id]  # recently seen first
            assert {r.id for r in await store.list(user_ref="p1")} == {a.id, b.id}
            assert [r.id for r in await store.list(user_ref="p1", channel="widget")] == [a.id]
            assert await store.count(channel="telegram") == 2 and await store.count() == 3
            assert [r.id for r in await store.list(limit=1, offset=1)] == [c.id]
            assert await store.delete(a.id) and not await store.delete(a.id)
            assert await store.get(a.id) is None
        async with SessionStore(path) as store:  # a restart keeps the registry
            assert await store.count() == 2 and await store.get(b.id) is not None

    asyncio.run(run())


def test_feedback_events_are_appended_exported_in_pages_and_deleted_with_the_session(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")

    async def run() -> None:
        async with FeedbackStore(path) as store, SessionStore(path):  # one file, two stores
            first = await store.add(session_id="s1", course_id="c1", verdict="like", user_ref="p1")
            await store.add(
                session_id="s1", course_id="c1", verdict="dislike", reason="too long"
            )  # changed mind
            await store.add(session_id="s2", course_id="c2", verdict="taken", occupation_uri="http://o/1")
            assert [e.verdict for e in await store.for_session("s1")] == ["like", "dislike"]
            page = await store.export(limit=2)
            assert [e.id for e in page] == [first.id, first.id + 1]
            rest = await store.export(after_id=page[-1].id)
            assert [(e.course_id, e.occupation_uri) for e in rest] == [("c2", "http://o/1")]
            assert await store.export(after_id=rest[-1].id) == []
            assert await store.delete_session("s1") == 2
            assert await store.for_session("s1") == [] and len(await store.export()) == 1

    asyncio.run(run())
