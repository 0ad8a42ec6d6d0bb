"""``python -m channels.telegram``: the bot in polling mode (development), with its own ``Advisor`` on the
configured checkpointer. ``--set-webhook URL`` / ``--delete-webhook`` register or remove the webhook the
server serves in webhook mode (``channels.telegram.webhook``) and exit.

Needs ``CRAFT_TELEGRAM_TOKEN``; registering a webhook also needs ``CRAFT_TELEGRAM_SECRET_TOKEN``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from agent.advisor import Advisor
from channels.http.db import session_db_path
from channels.http.feedback_store import FeedbackStore
from channels.telegram.bot import FEEDBACK_KEY, build_application, setup_commands
from channels.telegram.webhook import ALLOWED_UPDATES
from craft.settings import Settings, get_settings

log = logging.getLogger("channels.telegram")


async def poll(settings: Settings) -> None:
    """Load the models, then poll until SIGINT/SIGTERM."""
    async with Advisor(settings) as advisor, FeedbackStore(session_db_path(settings)) as feedback:
        log.info("loading models")
        await asyncio.to_thread(advisor.services.warm)
        application = build_application(advisor, settings)
        application.bot_data[FEEDBACK_KEY] = feedback
        updater = application.updater
        assert updater is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with application:  # initialize / shutdown
            await setup_commands(application)
            await updater.start_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
            await application.start()
            log.info("polling as @%s; Ctrl-C stops", application.bot.username)
            await stop.wait()
            await updater.stop()
            await application.stop()


async def set_webhook(settings: Settings, url: str | None) -> None:
    from telegram import Bot

    async with Bot(settings.telegram_token or "") as bot:
        if url is None:
            await bot.delete_webhook()
            print("webhook removed")
            return
        secret = settings.telegram_secret_token
        await bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
        print(f"webhook set to {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m channels.telegram", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--set-webhook", metavar="URL", help="register URL (…/telegram/webhook) and exit")
    group.add_argument("--delete-webhook", action="store_true", help="remove the webhook and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines contain the bot token
    settings = get_settings()
    if not settings.telegram_token:
        print("Set CRAFT_TELEGRAM_TOKEN (from @BotFather) first.", file=sys.stderr)
        return 2
    if args.set_webhook:
        if not settings.telegram_secret_token:
            print(
                "Set CRAFT_TELEGRAM_SECRET_TOKEN first: the webhook refuses calls without it.",
                file=sys.stderr,
            )
            return 2
        asyncio.run(set_webhook(settings, args.set_webhook))
    elif args.delete_webhook:
        asyncio.run(set_webhook(settings, None))
    else:
        asyncio.run(poll(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
