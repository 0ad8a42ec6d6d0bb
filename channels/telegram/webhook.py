"""Webhook mode: Telegram POSTs each update to the FastAPI server, which hands it to the bot's
``Application``.

How the server mounts it (the router reads the application from ``request.app.state.telegram``)::

    from channels.telegram.webhook import router, running

    application = build_application(advisor, settings, updater=False)
    async with running(application, webhook_url="https://host/telegram/webhook"):  # in the lifespan
        app.state.telegram = application
        ...                                                                         # serve
    app.include_router(router)

Every call must carry ``X-Telegram-Bot-Api-Secret-Token`` equal to ``settings.telegram_secret_token``
(Telegram sends it once the webhook was registered with that secret); without a configured secret every
call is refused, so an unprotected webhook cannot be opened by mistake.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from channels.telegram.bot import SETTINGS_KEY, setup_commands
from craft.settings import Settings

log = logging.getLogger(__name__)

PATH = "/telegram/webhook"
MAX_UPDATE_BYTES = 1_000_000  # a Telegram update is a few kilobytes
ALLOWED_UPDATES = ["message", "callback_query"]

router = APIRouter()


def _refuse(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


@router.post(PATH, include_in_schema=False)
async def telegram_webhook(request: Request) -> Response:
    """Verify the secret, parse the update and process it before answering (Telegram retries on errors,
    so a handler's failure is answered 200 after the apology went out: the bot's error handler)."""
    application: Application | None = getattr(request.app.state, "telegram", None)  # type: ignore[type-arg]
    if application is None:
        return _refuse(404, "the Telegram bot is not configured")
    settings: Settings = application.bot_data[SETTINGS_KEY]
    expected = settings.telegram_secret_token
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return _refuse(403, "invalid secret token")
    body = await request.body()
    if len(body) > MAX_UPDATE_BYTES:
        return _refuse(413, "update too large")
    try:
        payload: Any = json.loads(body)
        update = Update.de_json(payload, application.bot) if isinstance(payload, dict) else None
    except (ValueError, TypeError, KeyError):
        update = None
    if update is None:
        return _refuse(400, "not a Telegram update")
    await application.process_update(update)
    return JSONResponse({"ok": True})


@asynccontextmanager
async def running(
    application: Application,  # type: ignore[type-arg]
    *,
    webhook_url: str | None = None,
) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """Initialise and start the application for webhook mode (the command menu set; the webhook registered
    with the secret when ``webhook_url`` is given) and shut it down on exit. Raises ``TelegramError`` when the
    Bot API cannot be reached at all (``getMe``); the server may catch it and serve without the bot."""
    settings: Settings = application.bot_data[SETTINGS_KEY]
    if webhook_url and not settings.telegram_secret_token:
        raise ValueError("CRAFT_TELEGRAM_SECRET_TOKEN must be set to register a webhook")
    await application.initialize()  # getMe: raises TelegramError when the Bot API cannot be reached
    try:
        try:
            await setup_commands(application)
            if webhook_url:
                await application.bot.set_webhook(
                    webhook_url, secret_token=settings.telegram_secret_token, allowed_updates=ALLOWED_UPDATES
                )
        except TelegramError as error:  # the bot still answers; the menu/registration can be redone later
            log.warning("telegram set-up call failed: %s", type(error).__name__)
        await application.start()
        try:
            yield application
        finally:
            await application.stop()
    finally:
        await application.shutdown()


__all__ = ["ALLOWED_UPDATES", "PATH", "router", "running"]
