"""A Telegram Bot API stand-in for the real python-telegram-bot ``Application``: a ``BaseRequest`` that
records every call and answers the way Telegram does, including its refusals (HTML that does not parse,
text over 4,096 characters, callback data over 64 bytes, callback answers over 200 characters), plus
builders for the updates Telegram would send."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "CRAFT", "username": "craft_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False,
            "supports_inline_queries": False}  # fmt: skip
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
                 "tg-spoiler", "tg-emoji", "blockquote"}  # fmt: skip
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode, strictly: known tags only, properly nested and closed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.errors.append(f"unsupported tag <{tag}>")
        if tag == "a" and not dict(attrs).get("href"):
            self.errors.append("<a> without href")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(markup: str) -> tuple[str, list[str]]:
    """The visible text and the reasons Telegram would refuse ``markup`` (none: it parses)."""
    errors = []
    for i, char in enumerate(markup):
        if char == "&" and not _ENTITY.match(markup, i):
            errors.append(f"bare '&' at {i}")
        if char == "<" and not re.match(r"</?[a-zA-Z]", markup[i : i + 3]):
            errors.append(f"bare '<' at {i}")
    parser = TelegramHTML()
    parser.feed(markup)
    parser.close()
    errors += parser.errors + [f"unclosed <{tag}>" for tag in parser.stack]
    return "".join(parser.text), errors


def utf16(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    ok: bool = True
    result: Any = None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        markup = self.params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        return list(markup.get("inline_keyboard") or [])

    @property
    def callback_data(self) -> list[str]:
        return [button["callback_data"] for row in self.buttons for button in row]


class FakeBotAPI(BaseRequest):
    """Records calls; answers like the Bot API. ``fail_next(method)`` makes the next such call fail once."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self._failures: dict[str, str] = {}
        self._next_id = 1

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def fail_next(self, method: str, description: str = "Bad Request: can't parse entities") -> None:
        self._failures[method] = description

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data is not None else {}
        call = Call(name, params)
        self.calls.append(call)
        error = self._failures.pop(name, None) or self._refusal(name, params)
        if error:
            call.ok = False
            return 400, json.dumps({"ok": False, "error_code": 400, "description": error}).encode()
        call.result = self._result(name, params)
        return 200, json.dumps({"ok": True, "result": call.result}).encode()

    def _refusal(self, name: str, params: dict[str, Any]) -> str | None:
        for data in Call(name, params).callback_data:
            if not 1 <= len(data.encode()) <= 64:
                return "Bad Request: BUTTON_DATA_INVALID"
        if name in ("sendMessage", "editMessageText"):
            markup = str(params.get("text", ""))
            visible, errors = parse_html(markup) if params.get("parse_mode") == "HTML" else (markup, [])
            if errors:
                return f"Bad Request: can't parse entities: {errors[0]}"
            if not visible.strip():
                return "Bad Request: message text is empty"
            if utf16(visible) > 4096:
                return "Bad Request: message is too long"
        if name == "answerCallbackQuery" and utf16(str(params.get("text") or "")) > 200:
            return "Bad Request: MESSAGE_TOO_LONG"
        return None

    def _result(self, name: str, params: dict[str, Any]) -> Any:
        if name == "getMe":
            return BOT_USER
        if name == "getUpdates":
            return []
        if name == "sendMessage":
            message_id, self._next_id = self._next_id, self._next_id + 1
            chat_id = int(params["chat_id"])
            message = {"message_id": message_id, "date": int(time.time()), "from": BOT_USER,
                       "chat": {"id": chat_id, "type": "private", "first_name": "Test"},
                       "text": parse_html(str(params["text"]))[0]}  # fmt: skip
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            self.messages[message_id] = message
            return message
        if name in ("editMessageReplyMarkup", "editMessageText"):
            message = dict(self.messages[int(params["message_id"])])
            message.pop("reply_markup", None)
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            self.messages[message["message_id"]] = message
            return message
        return True


# --- updates as Telegram sends them ----------------------------------------------------------------


def _user(chat_id: int, language: str) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Test", "language_code": language}


def message_update(update_id: int, chat_id: int, text: str, language: str = "en") -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 10_000 + update_id,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": "Test"},
        "from": _user(chat_id, language),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


def photo_update(update_id: int, chat_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 10_000 + update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Test"},
            "from": _user(chat_id, "en"),
            "photo": [{"file_id": "f1", "file_unique_id": "u1", "width": 10, "height": 10}],
        },
    }


def callback_update(update_id: int, chat_id: int, data: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb{update_id}",
            "from": _user(chat_id, "en"),
            "chat_instance": f"ci{chat_id}",
            "data": data,
            "message": message,
        },
    }


class BotHarness:
    """The real ``Application`` over the fake API, driven synchronously on its own event loop."""

    def __init__(self, application: Application, api: FakeBotAPI, loop: asyncio.AbstractEventLoop) -> None:  # type: ignore[type-arg]
        self.application, self.api, self.loop = application, api, loop
        self._update_id = 0

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def feed(self, payload: dict[str, Any]) -> list[Call]:
        start = len(self.api.calls)
        update = Update.de_json(payload, self.application.bot)
        self.run(self.application.process_update(update))
        return self.api.calls[start:]

    def _next(self) -> int:
        self._update_id += 1
        return self._update_id

    def say(self, chat_id: int, text: str, language: str = "en") -> list[Call]:
        return self.feed(message_update(self._next(), chat_id, text, language))

    def press(self, chat_id: int, data: str, sent: Call) -> list[Call]:
        """Press the button ``data`` under the message that the call ``sent`` created."""
        assert data in sent.callback_data, (data, sent.callback_data)
        message = self.api.messages[sent.result["message_id"]]
        assert message["chat"]["id"] == chat_id
        return self.feed(callback_update(self._next(), chat_id, data, message))
