"""The Telegram bot in webhook mode inside the API server: the lifespan starts the real python-telegram-bot
``Application`` on the server's advisor (registering the webhook with its secret), the webhook route is
mounted and verifies the secret; the Bot API is the offline stand-in from ``fake_telegram``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_telegram import FakeBotAPI, message_update
from fastapi.testclient import TestClient

from channels.http import create_app
from craft.settings import Settings

pytest.importorskip("channels.telegram.webhook")

SECRET = "webhook-secret-for-tests"


@pytest.fixture(scope="module")
def api() -> FakeBotAPI:
    return FakeBotAPI()


@pytest.fixture(scope="module")
def client(api: FakeBotAPI) -> Iterator[TestClient]:
    settings = Settings(
        checkpoint_url=":memory:",
        session_db=":memory:",
        telegram_token="4242:test-token",
        telegram_mode="webhook",
        telegram_secret_token=SECRET,
        public_url="https://craft.example/",
    )
    with TestClient(create_app(settings, warm=False, telegram_request=api)) as client:
        yield client


def test_lifespan_registers_the_webhook_and_the_route_checks_the_secret(
    client: TestClient, api: FakeBotAPI
) -> None:
    webhook = next(c for c in api.calls if c.method == "setWebhook")
    assert webhook.params["url"] == "https://craft.example/telegram/webhook"
    assert webhook.params["secret_token"] == SECRET

    update = message_update(1, 555, "/start")
    before = len(api.calls)
    assert client.post("/telegram/webhook", json=update).status_code == 403
    wrong = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
    assert client.post("/telegram/webhook", json=update, headers=wrong).status_code == 403
    assert len(api.calls) == before
    right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert client.post("/telegram/webhook", json=update, headers=right).status_code == 200
    assert any(c.method == "sendMessage" and c.params["chat_id"] == 555 for c in api.calls[before:])
