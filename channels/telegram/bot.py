"""The Telegram bot: a python-telegram-bot ``Application`` whose handlers drive the ``Advisor``.

Each chat is one conversation, ``telegram:<chat_id>``, on the same checkpointer as the other channels, so a
restarted bot (or the server, in webhook mode) continues where the chat left off. Commands that only show
something (``/profile``, ``/courses``) read the stored state; everything the user says, and the buttons that
stand for something said ("2", "show me courses", "answer in German"), runs through the agent. Updates are
processed concurrently across chats and one at a time within a chat (a lock per chat), so replies keep their
order. A failing handler ends in an apology to the user and a log line without the message text.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import weakref
from contextlib import suppress
from typing import Any

from telegram import BotCommand, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from agent.advisor import Advisor
from agent.state import AdvisorState, Lang
from channels.telegram import format as fmt
from channels.telegram import keyboards
from craft.settings import Settings

log = logging.getLogger(__name__)

SETTINGS_KEY = "craft.settings"
FEEDBACK_KEY = "craft.feedback"  # a channels.http.feedback_store.FeedbackStore, when the host opened one
"""Where ``build_application`` leaves the settings in ``application.bot_data`` (the webhook reads them)."""

TYPING_EVERY_S = 4.5  # Telegram shows "typing…" for 5 s per chat action

PHRASES: dict[str, dict[Lang, str]] = {
    # what a button or command stands for, said to the agent in the conversation's language (so it does not
    # read as a switch of language)
    "greet": {"en": "Hello", "de": "Hallo"},
    "reset": {"en": "start over", "de": "von vorne"},
    "courses": {"en": "show me courses", "de": "zeig mir Kurse"},
    "language": {"en": "answer in English", "de": "antworte auf Deutsch"},
}

COMMANDS: dict[Lang, list[tuple[str, str]]] = {
    "en": [
        ("start", "Start or continue"),
        ("courses", "Your course list"),
        ("profile", "What I know about you"),
        ("language", "Reply language"),
        ("reset", "Start over"),
    ],
    "de": [
        ("start", "Beginnen oder fortsetzen"),
        ("courses", "Ihre Kursliste"),
        ("profile", "Was ich über Sie weiß"),
        ("language", "Antwortsprache"),
        ("reset", "Von vorne beginnen"),
    ],
}


def conversation_id(chat_id: int) -> str:
    return f"telegram:{chat_id}"


def _user_language(update: Update) -> Lang:
    user = update.effective_user
    return "de" if user is not None and (user.language_code or "").lower().startswith("de") else "en"


class TelegramChannel:
    """The handlers, bound to one ``Advisor``."""

    def __init__(self, advisor: Advisor, settings: Settings) -> None:
        self.advisor = advisor
        self.settings = settings
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, chat_id: int) -> asyncio.Lock:
        """The chat's lock (kept while anyone holds or waits for it)."""
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[chat_id] = lock
        return lock

    async def _language(self, chat_id: int, update: Update) -> Lang:
        conversation = conversation_id(chat_id)
        if await self.advisor.exists(conversation):
            return (await self.advisor.state(conversation)).language
        return _user_language(update)

    # --- sending ---------------------------------------------------------------------------------

    async def _send(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, html: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        """One HTML reply, split to Telegram's limit; the keyboard goes under the last piece."""
        pieces = fmt.split(html) or ["…"]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            await context.bot.send_message(chat_id, piece, reply_markup=markup if last else None)

    async def _typing(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> None:
        """Keep "typing…" visible while a turn runs (the first action is sent before the turn starts)."""
        while True:
            await asyncio.sleep(TYPING_EVERY_S)
            with suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)

    async def _turn(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, said: str) -> AdvisorState:
        """One agent turn and its reply, with the occupation or feedback keyboard it calls for. The caller
        holds the chat's lock."""
        with suppress(TelegramError):
            await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
        typing = asyncio.create_task(self._typing(context, chat_id))
        listed = False
        state: AdvisorState | None = None
        try:
            async for event in self.advisor.stream(conversation_id(chat_id), said):
                if event["event"] == "recommendations":
                    listed = True
                elif event["event"] == "done":
                    state = event["state"]
        finally:
            typing.cancel()
        assert state is not None  # the stream always ends with "done"
        markup: InlineKeyboardMarkup | None = None
        if state.candidates and state.occupation is None:
            markup = keyboards.occupation_keyboard(state.candidates, state.turn)
        elif listed and state.current:
            markup = self._feedback_markup(state)
        await self._send(context, chat_id, fmt.to_html(state.reply), markup)
        return state

    @staticmethod
    def _feedback_markup(state: AdvisorState) -> InlineKeyboardMarkup | None:
        courses = fmt.current_courses(state)
        if not courses:
            return None
        return keyboards.feedback_keyboard(len(courses), courses[0].turn, state.language)

    # --- commands --------------------------------------------------------------------------------

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A new chat is greeted by the agent; a known one gets "welcome back" and its profile."""
        chat_id = update.effective_chat.id  # type: ignore[union-attr]  # commands always come from a chat
        conversation = conversation_id(chat_id)
        async with self.lock(chat_id):
            if await self.advisor.exists(conversation):
                state = await self.advisor.state(conversation)
                lang = state.language
                html = "\n\n".join(
                    [
                        fmt.escape(fmt.text("welcome_back", lang)),
                        fmt.profile(state),
                        fmt.escape(fmt.next_step(state)),
                    ]
                )
                await self._send(context, chat_id, html, None)
                return
            await self._turn(context, chat_id, PHRASES["greet"][_user_language(update)])

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The agent's "start over": goal, skills, filters and list are forgotten, the language kept."""
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        async with self.lock(chat_id):
            lang = await self._language(chat_id, update)
            await self._turn(context, chat_id, PHRASES["reset"][lang])

    async def profile(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        async with self.lock(chat_id):
            state = await self.advisor.state(conversation_id(chat_id))
            if not await self.advisor.exists(conversation_id(chat_id)):
                state.language = _user_language(update)
            await self._send(context, chat_id, fmt.profile(state), None)

    async def courses(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The current list again with its buttons; without one, what is missing for one (or a new list
        when goal and skills are known but the last search came back empty)."""
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        conversation = conversation_id(chat_id)
        async with self.lock(chat_id):
            state = await self.advisor.state(conversation)
            lang = state.language if await self.advisor.exists(conversation) else _user_language(update)
            if fmt.current_courses(state):
                await self._send(context, chat_id, fmt.course_list(state), self._feedback_markup(state))
            elif state.occupation is None:
                await self._send(context, chat_id, fmt.escape(fmt.text("next_goal", lang)), None)
            elif not state.skills_done:
                await self._send(context, chat_id, fmt.escape(fmt.text("next_skills", lang)), None)
            else:
                await self._turn(context, chat_id, PHRASES["courses"][lang])

    async def language(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        lang = await self._language(chat_id, update)
        text = fmt.escape(fmt.text("choose_language", lang))
        await self._send(context, chat_id, text, keyboards.language_keyboard())

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/help`` and unknown commands."""
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        lang = await self._language(chat_id, update)
        await self._send(context, chat_id, fmt.escape(fmt.text("help", lang)), None)

    # --- messages and buttons --------------------------------------------------------------------

    async def message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Plain text is the user's turn; an over-long one is declined politely without reaching the agent
        (Telegram cannot refuse a message the way the HTTP API answers 413)."""
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        said = update.effective_message.text or ""  # type: ignore[union-attr]
        limit = self.settings.max_message_chars
        async with self.lock(chat_id):
            if len(said) > limit:
                lang = await self._language(chat_id, update)
                refusal = fmt.text("too_long", lang, n=len(said), max=limit)
                await self._send(context, chat_id, fmt.escape(refusal), None)
                return
            await self._turn(context, chat_id, said)

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        lang = await self._language(chat_id, update)
        await self._send(context, chat_id, fmt.escape(fmt.text("text_only", lang)), None)

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Occupation choice, course feedback or language; a press on an outdated message only says so."""
        query = update.callback_query
        assert query is not None
        press = keyboards.parse(query.data)
        if press is None or query.message is None:
            await query.answer()
            return
        chat_id = query.message.chat.id
        conversation = conversation_id(chat_id)
        async with self.lock(chat_id):
            state = await self.advisor.state(conversation)
            lang = state.language
            if press.kind == "lang" and press.language is not None:
                await query.answer()
                await self._drop_keyboard(query)
                await self._turn(context, chat_id, PHRASES["language"][press.language])
            elif press.kind == "occ":
                if not (
                    state.candidates
                    and state.turn == press.turn
                    and 1 <= press.index <= len(state.candidates)
                ):
                    await query.answer(fmt.text("stale", lang))
                    return
                await query.answer()
                await self._drop_keyboard(query)
                await self._turn(context, chat_id, str(press.index))
            else:
                courses = fmt.current_courses(state)
                if not (courses and courses[0].turn == press.turn and 1 <= press.index <= len(courses)):
                    await query.answer(fmt.text("stale", lang))
                    return
                course = courses[press.index - 1]
                assert press.verdict is not None
                _, refresh = await self.advisor.feedback(conversation, course.course_id, press.verdict)
                store = context.application.bot_data.get(FEEDBACK_KEY)
                if store is not None:  # the same retraining events as the HTTP API's feedback endpoint
                    await store.add(
                        session_id=conversation,
                        course_id=course.course_id,
                        verdict=press.verdict,
                        user_ref=conversation,
                        occupation_uri=state.occupation.uri if state.occupation else None,
                    )
                title = course.title if len(course.title) <= 80 else course.title[:79] + "…"
                await query.answer(fmt.text(f"fb_{press.verdict}", lang, title=title))
                if refresh:  # the list changes: its old buttons would point at other courses
                    await self._drop_keyboard(query)
                    await self._turn(context, chat_id, PHRASES["courses"][lang])

    @staticmethod
    async def _drop_keyboard(query: Any) -> None:
        with suppress(TelegramError):  # e.g. the message is too old to edit
            await query.edit_message_reply_markup(reply_markup=None)

    # --- errors ----------------------------------------------------------------------------------

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log where it failed (exception type and frames, not its message, which may quote the user) and
        apologise; the application keeps running."""
        error = context.error
        frames = "".join(traceback.format_tb(error.__traceback__)) if error is not None else ""
        log.error("telegram update failed: %s\n%s", type(error).__name__, frames)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        try:
            if update.callback_query is not None:
                with suppress(TelegramError):
                    await update.callback_query.answer()
            apology = fmt.escape(fmt.text("error", _user_language(update)))
            await context.bot.send_message(update.effective_chat.id, apology)
        except Exception as failure:  # the apology is best effort
            log.warning("could not apologise in chat: %s", type(failure).__name__)


async def setup_commands(application: Application) -> None:  # type: ignore[type-arg]
    """The command menu, in English and German."""
    for lang, commands in COMMANDS.items():
        menu = [BotCommand(name, description) for name, description in commands]
        await application.bot.set_my_commands(menu, language_code=None if lang == "en" else lang)


def build_application(
    advisor: Advisor,
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    updater: bool = True,
) -> Application:  # type: ignore[type-arg]
    """The bot's ``Application`` with every handler. ``request`` replaces the HTTP transport to the Bot API
    (tests); ``updater=False`` builds it without polling (webhook mode: the server feeds it updates)."""
    if not settings.telegram_token:
        raise ValueError("CRAFT_TELEGRAM_TOKEN is not set")
    builder = (
        Application.builder()
        .token(settings.telegram_token)
        .defaults(
            Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True))
        )
        .concurrent_updates(True)
    )
    if request is not None:
        builder = builder.request(request)
        if updater:
            builder = builder.get_updates_request(request)
    if not updater:
        builder = builder.updater(None)
    application = builder.build()
    application.bot_data[SETTINGS_KEY] = settings
    channel = TelegramChannel(advisor, settings)
    new_messages = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler("start", channel.start, filters=new_messages))
    application.add_handler(CommandHandler("reset", channel.reset, filters=new_messages))
    application.add_handler(CommandHandler("profile", channel.profile, filters=new_messages))
    application.add_handler(CommandHandler("courses", channel.courses, filters=new_messages))
    application.add_handler(CommandHandler("language", channel.language, filters=new_messages))
    application.add_handler(CommandHandler("help", channel.help, filters=new_messages))
    application.add_handler(MessageHandler(new_messages & filters.COMMAND, channel.help))
    application.add_handler(MessageHandler(new_messages & filters.TEXT & ~filters.COMMAND, channel.message))
    application.add_handler(
        MessageHandler(
            new_messages & filters.ChatType.PRIVATE & ~filters.TEXT & ~filters.StatusUpdate.ALL,
            channel.not_text,
        )
    )
    application.add_handler(CallbackQueryHandler(channel.button))
    application.add_error_handler(channel.error)
    return application


__all__ = [
    "FEEDBACK_KEY",
    "SETTINGS_KEY",
    "TelegramChannel",
    "build_application",
    "conversation_id",
    "setup_commands",
]
