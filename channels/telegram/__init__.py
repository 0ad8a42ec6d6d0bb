"""The Telegram bot (``build_application``): polling for development (``python -m channels.telegram``),
webhook mode mounted in the FastAPI server (``channels.telegram.webhook.router``)."""

from channels.telegram.bot import build_application, conversation_id

__all__ = ["build_application", "conversation_id"]
