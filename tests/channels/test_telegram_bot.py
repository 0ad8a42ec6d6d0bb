"""The Telegram bot end to end, offline: the real python-telegram-bot ``Application`` and the real advisor
(knowledge base of the test store, SQLite conversations), talking to a fake Bot API that answers and refuses
like Telegram. Each test is its own chat on one shared application."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator

import httpx
import pytest
from fake_telegram import BotHarness, Call, FakeBotAPI, message_update, parse_html, photo_update, utf16
from fastapi import FastAPI

from agent.advisor import Advisor
from agent.context import get_services
from agent.state import AdvisorState
from channels.http.feedback_store import FeedbackStore
from channels.telegram.bot import FEEDBACK_KEY, SETTINGS_KEY, build_application, conversation_id
from channels.telegram.webhook import router, running
from craft.settings import Settings

SECRET = "s3cret-token_for-tests"


@pytest.fixture(scope="module")
def bot(agent_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotHarness]:
    path = tmp_path_factory.mktemp("telegram") / "conversations.sqlite"
    settings = agent_settings.model_copy(
        update={
            "checkpoint_url": f"sqlite:///{path}",
            "telegram_token": "123456:TEST-token",
            "telegram_secret_token": SECRET,
        }
    )
    loop = asyncio.new_event_loop()
    advisor = Advisor(settings, services=get_services(agent_settings))
    loop.run_until_complete(advisor.__aenter__())
    api = FakeBotAPI()
    application = build_application(advisor, settings, request=api, updater=False)
    feedback = loop.run_until_complete(FeedbackStore(str(path.with_name("sessions.sqlite"))).open())
    application.bot_data[FEEDBACK_KEY] = feedback
    loop.run_until_complete(application.initialize())
    loop.run_until_complete(application.start())
    harness = BotHarness(application, api, loop)
    harness.advisor = advisor  # type: ignore[attr-defined]
    yield harness
    loop.run_until_complete(application.stop())
    loop.run_until_complete(application.shutdown())
    loop.run_until_complete(feedback.close())
    loop.run_until_complete(advisor.__aexit__(None, None, None))
    loop.close()


def state(bot: BotHarness, chat_id: int) -> AdvisorState:
    return bot.run(bot.advisor.state(conversation_id(chat_id)))  # type: ignore[attr-defined]


def sent(calls: list[Call]) -> list[Call]:
    """The messages sent; every one Telegram accepted, valid HTML within the length limit."""
    messages = [c for c in calls if c.method == "sendMessage"]
    for message in messages:
        assert message.ok, message.params
        assert utf16(message.text) <= 4096
        assert not parse_html(message.text)[1]
    return messages


def text_of(calls: list[Call]) -> str:
    return "\n".join(parse_html(m.text)[0] for m in sent(calls))


def test_start_greets_then_welcomes_back(bot: BotHarness) -> None:
    calls = bot.say(101, "/start")
    assert calls[0].method == "sendChatAction" and calls[0].params["action"] == "typing"
    assert "CRAFT" in text_of(calls)
    calls = bot.say(101, "/start")
    reply = text_of(calls)
    assert reply.startswith("Welcome back") and "Goal: not set yet" in reply
    assert not any(c.method == "sendChatAction" for c in calls)  # read from memory, no turn


def test_goal_choice_courses_feedback_profile_reset(bot: BotHarness) -> None:
    chat = 102
    # ambiguous goal: the candidates come as buttons
    calls = bot.say(chat, "I want to become a nurse")
    (question,) = sent(calls)
    candidates = state(bot, chat).candidates
    assert len(candidates) >= 2 and len(question.callback_data) == len(candidates)
    assert all(data.startswith("occ:") for data in question.callback_data)
    # pressing one sets the goal and removes the buttons
    calls = bot.press(chat, question.callback_data[0], question)
    methods = [c.method for c in calls]
    assert methods[0] == "answerCallbackQuery" and "editMessageReplyMarkup" in methods
    assert state(bot, chat).occupation.uri == candidates[0].uri  # type: ignore[union-attr]
    assert "your goal is" in text_of(calls)
    # no skills yet: a course list with a row of feedback buttons per course
    calls = bot.say(chat, "nothing yet")
    after = state(bot, chat)
    assert len(after.current) >= 5
    messages = sent(calls)
    listing = messages[-1]
    assert len(listing.buttons) == len(after.current)
    assert all(re.fullmatch(r"fb:\d+:\d+:[ldt]", d) for d in listing.callback_data)
    catalog = set(bot.advisor.services.kb.courses["title"])  # type: ignore[attr-defined]
    body = "\n".join(m.text for m in messages)
    by_id = {c.course_id: c for c in after.shown}
    for course_id in after.current:
        title = by_id[course_id].title
        assert title in catalog
        assert html.escape(title, quote=False) in body
    assert re.search(r'1\. <a href="https?://[^"]+"><b>', body)  # numbered, linked titles
    # 👎 on the second course: acknowledged, and a new list without it
    disliked = after.current[1]
    data = next(d for d in listing.callback_data if d.endswith(":2:d"))
    calls = bot.press(chat, data, listing)
    answer = next(c for c in calls if c.method == "answerCallbackQuery")
    assert by_id[disliked].title[:40] in answer.params["text"]
    refreshed = state(bot, chat)
    assert disliked not in refreshed.current and len(refreshed.current) >= 5
    assert next(c for c in refreshed.shown if c.course_id == disliked).feedback == "dislike"
    events = bot.run(bot.application.bot_data[FEEDBACK_KEY].for_session(f"telegram:{chat}"))
    assert [(e.course_id, e.verdict) for e in events] == [(disliked, "dislike")]  # kept for retraining
    new_listing = sent(calls)[-1]
    assert len(new_listing.buttons) == len(refreshed.current)
    titles = re.findall(r"<a href=\"[^\"]+\"><b>(.*?)</b></a>", new_listing.text)
    assert html.escape(by_id[disliked].title, quote=False) not in titles
    # the old list's buttons are stale now: a press only says so
    calls = bot.press(chat, listing.callback_data[0], listing)
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    assert "older message" in calls[0].params["text"]
    assert state(bot, chat).shown == refreshed.shown
    # /courses shows the current list again, with its buttons
    calls = bot.say(chat, "/courses")
    again = sent(calls)
    assert len(again[-1].buttons) == len(refreshed.current)
    now = {c.course_id: c for c in refreshed.shown}
    assert all(html.escape(now[cid].title, quote=False) in again[0].text for cid in refreshed.current)
    # /profile: goal, gap size, no turn
    turns = refreshed.turn
    profile = text_of(bot.say(chat, "/profile"))
    assert f"Goal: {refreshed.occupation.label}" in profile  # type: ignore[union-attr]
    assert re.search(r"Skill gap: \d+ skills, \d+ of them essential", profile)
    assert state(bot, chat).turn == turns
    # /reset: the agent's start over
    calls = bot.say(chat, "/reset")
    assert "start over" in text_of(calls)
    assert state(bot, chat).occupation is None and state(bot, chat).current == []
    assert "Goal: not set yet" in text_of(bot.say(chat, "/profile"))


def test_language_button_switches_replies_to_german(bot: BotHarness) -> None:
    chat = 103
    (picker,) = sent(bot.say(chat, "/language"))
    assert picker.callback_data == ["lang:en", "lang:de"]
    calls = bot.press(chat, "lang:de", picker)
    assert "Deutsch" in text_of(calls)
    calls = bot.say(chat, "I'd like to become a data analyst")  # English words, German reply (pinned)
    if state(bot, chat).candidates:  # the German labels may match several occupations closely
        question = sent(calls)[-1]
        assert "Welchen meinen Sie?" in text_of(calls)
        calls = bot.press(chat, question.callback_data[0], question)
    assert "Ihr Ziel ist Datenanalytiker" in text_of(calls)
    assert state(bot, chat).language == "de"
    assert "Ziel: Datenanalytiker" in text_of(bot.say(chat, "/profile"))


def test_too_long_message_is_declined_without_a_turn(bot: BotHarness) -> None:
    calls = bot.say(104, "x" * 20_000)
    assert [c.method for c in calls] == ["sendMessage"]
    assert "20,000 characters" in text_of(calls) and "8,000" in text_of(calls)
    assert not bot.run(bot.advisor.exists(conversation_id(104)))  # type: ignore[attr-defined]


def test_failures_end_in_an_apology_and_the_bot_goes_on(bot: BotHarness) -> None:
    chat = 105
    bot.api.fail_next("sendMessage")  # Telegram refuses the reply once
    calls = bot.say(chat, "Hello")
    replies = [c for c in calls if c.method == "sendMessage"]
    assert [c.ok for c in replies] == [False, True]
    assert "something went wrong" in parse_html(replies[1].text)[0]
    assert "CRAFT" in text_of(bot.say(chat, "Hello"))
    assert "only read text" in text_of(bot.feed(photo_update(9001, chat)))
    assert "/courses" in text_of(bot.say(chat, "/whatever"))


def test_webhook_checks_the_secret_then_processes_the_update(bot: BotHarness) -> None:
    app = FastAPI()
    app.include_router(router)
    app.state.telegram = bot.application
    update = message_update(7001, 106, "/start")

    async def post(headers: dict[str, str], body: object) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
            return await client.post("/telegram/webhook", json=body, headers=headers)

    start = len(bot.api.calls)
    assert bot.run(post({}, update)).status_code == 403
    assert bot.run(post({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, update)).status_code == 403
    assert len(bot.api.calls) == start  # nothing reached the bot
    assert (
        bot.run(post({"X-Telegram-Bot-Api-Secret-Token": SECRET}, ["not", "an", "update"])).status_code == 400
    )
    response = bot.run(post({"X-Telegram-Bot-Api-Secret-Token": SECRET}, update))
    assert response.status_code == 200
    assert "CRAFT" in text_of(bot.api.calls[start:])
    assert bot.run(bot.advisor.exists(conversation_id(106)))  # type: ignore[attr-defined]


def test_webhook_lifecycle_registers_the_secret(bot: BotHarness) -> None:
    api = FakeBotAPI()
    settings = bot.application.bot_data[SETTINGS_KEY]
    application = build_application(bot.advisor, settings, request=api, updater=False)  # type: ignore[attr-defined]

    async def lifecycle() -> bool:
        async with running(application, webhook_url="https://craft.example/telegram/webhook") as started:
            return started.running

    assert bot.run(lifecycle()) and not application.running
    assert [c.method for c in api.calls] == ["getMe", "setMyCommands", "setMyCommands", "setWebhook"]
    assert api.calls[-1].params["secret_token"] == SECRET
    assert api.calls[2].params["language_code"] == "de"
