"""Request models as properties (hypothesis): every valid body is accepted, every body with an unknown field
or an oversize value is refused with 422 through the app; plus the error mapping of unreachable backing
services (503) and the Telegram webhook mount. No data needed: nothing here reaches the advisor's models."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.routing import NoMatchFound

from channels.http import create_app
from channels.http.errors import ApiError, is_unavailable
from channels.http.offload import offload
from channels.http.schemas import FeedbackIn, MessageIn, RecommendIn, SessionCreate
from craft.settings import Settings
from tools.lookup import InvalidQuery

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

channels = st.from_regex(r"\A[a-z][a-z0-9_-]{0,31}\Z")
user_refs = st.text(string.ascii_letters + string.digits + "_.:@+=-", min_size=1, max_size=128)
languages = st.sampled_from([None, "en", "de"])
verdicts = st.sampled_from(["like", "dislike", "taken"])
short = st.text(min_size=1, max_size=200)
extra_keys = st.text(string.ascii_lowercase, min_size=1, max_size=12)


@st.composite
def session_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = {"language": draw(languages), "channel": draw(channels), "user_ref": draw(user_refs)}
    return {k: v for k, v in body.items() if draw(st.booleans())}


@st.composite
def feedback_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = {"course_id": draw(st.text(min_size=1, max_size=256)), "verdict": draw(verdicts)}
    if draw(st.booleans()):
        body["reason"] = draw(st.none() | st.text(max_size=1000))
    return body


@st.composite
def recommend_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"occupation": draw(short)}
    if draw(st.booleans()):
        body["skills_have"] = draw(st.lists(short, max_size=50))
    if draw(st.booleans()):
        body["k"] = draw(st.integers(1, 50))
    if draw(st.booleans()):
        body["lang"] = draw(st.sampled_from(["en", "de"]))
    if draw(st.booleans()):
        body["filters"] = {"free_only": draw(st.booleans()), "price_max": draw(st.none() | st.floats(0, 1e6))}
    return body


def with_extra(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {**body, f"x_{key}": "surprise"}


@given(session_bodies(), extra_keys)
@FAST
def test_session_create_model(body: dict[str, Any], key: str) -> None:
    SessionCreate.model_validate(body)
    with pytest.raises(ValidationError):
        SessionCreate.model_validate(with_extra(body, key))


@given(feedback_bodies(), extra_keys)
@FAST
def test_feedback_model(body: dict[str, Any], key: str) -> None:
    FeedbackIn.model_validate(body)
    for bad in (
        with_extra(body, key),
        {**body, "course_id": "c" * 257},
        {**body, "reason": "r" * 1001},
        {**body, "verdict": "meh"},
        {**body, "course_id": ""},
    ):
        with pytest.raises(ValidationError):
            FeedbackIn.model_validate(bad)


@given(recommend_bodies(), extra_keys)
@FAST
def test_recommend_model(body: dict[str, Any], key: str) -> None:
    RecommendIn.model_validate(body)
    for bad in (
        with_extra(body, key),
        {**body, "k": 0},
        {**body, "k": 51},
        {**body, "occupation": "o" * 201},
        {**body, "occupation": ""},
        {**body, "skills_have": ["s"] * 51},
        {**body, "skills_have": ["s" * 201]},
        {**body, "filters": {"free_only": True, key + "_x": 1}},
        {**body, "lang": "fr"},
    ):
        with pytest.raises(ValidationError):
            RecommendIn.model_validate(bad)


@given(st.text(max_size=300))
@FAST
def test_message_model_takes_any_text(text: str) -> None:
    assert MessageIn.model_validate({"text": text}).text == text
    with pytest.raises(ValidationError):
        MessageIn.model_validate({"text": text, "role": "system"})


# --- the same through the app: 422 with the one error shape -------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app_settings = Settings(checkpoint_url=":memory:", session_db=":memory:", rate_limit_per_minute=0)
    with TestClient(create_app(app_settings, warm=False)) as client:
        yield client


def invalid(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


@given(body=session_bodies(), key=extra_keys)
@FAST
def test_sessions_endpoint_accepts_valid_and_refuses_extra_fields(
    client: TestClient, body: dict[str, Any], key: str
) -> None:
    assert client.post("/v1/sessions", json=body).status_code == 201
    invalid(client.post("/v1/sessions", json=with_extra(body, key)))
    invalid(client.post("/v1/sessions", json={**body, "user_ref": "u" * 129}))


@given(body=feedback_bodies(), key=extra_keys)
@FAST
def test_feedback_endpoint_validates_before_looking_the_course_up(
    client: TestClient, body: dict[str, Any], key: str
) -> None:
    sid = client.post("/v1/sessions", json={}).json()["session_id"]
    valid = client.post(f"/v1/sessions/{sid}/feedback", json=body)
    assert (
        valid.status_code == 404 and valid.json()["error"]["code"] == "unknown_course"
    )  # valid, never shown
    invalid(client.post(f"/v1/sessions/{sid}/feedback", json=with_extra(body, key)))
    invalid(client.post(f"/v1/sessions/{sid}/feedback", json={**body, "reason": "r" * 1001}))


@given(body=recommend_bodies(), key=extra_keys)
@FAST
def test_recommend_endpoint_refuses_extra_and_oversize(
    client: TestClient, body: dict[str, Any], key: str
) -> None:
    invalid(client.post("/v1/recommend", json=with_extra(body, key)))
    invalid(client.post("/v1/recommend", json={**body, "k": 51}))
    invalid(client.post("/v1/recommend", json={**body, "skills_have": ["s"] * 51}))


def test_session_create_without_a_body(client: TestClient) -> None:
    assert client.post("/v1/sessions").status_code == 201
    invalid(client.post("/v1/sessions", content=b"[1, 2]", headers={"Content-Type": "application/json"}))


# --- unreachable backing services ---------------------------------------------------------------------------


def test_connection_errors_are_recognised_through_wrapping() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    assert is_unavailable(refused)
    assert is_unavailable(ValueError("Could not connect to a Chroma server. Are you sure it is running?"))
    try:
        try:
            raise httpx.ReadTimeout("timed out")
        except httpx.ReadTimeout as inner:
            raise RuntimeError("node failed") from inner
    except RuntimeError as outer:
        assert is_unavailable(outer)
    assert is_unavailable(ExceptionGroup("tasks", [KeyError("x"), ConnectionRefusedError()]))
    assert not is_unavailable(ValueError("bad value"))
    assert not is_unavailable(KeyError("x"))


def test_offload_maps_tool_failures() -> None:
    def unreachable() -> None:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    def refuses() -> None:
        raise InvalidQuery("That text is too long.")

    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(ApiError) as error:
        asyncio.run(offload(unreachable))
    assert (error.value.status, error.value.code) == (503, "unavailable")
    with pytest.raises(ApiError) as error:
        asyncio.run(offload(refuses))
    assert (error.value.status, error.value.message) == (422, "That text is too long.")
    with pytest.raises(KeyError):  # a bug stays a bug (the catch-all answers it with a generic 500)
        asyncio.run(offload(broken))


def test_telegram_webhook_is_mounted_only_in_webhook_mode() -> None:
    pytest.importorskip("channels.telegram.webhook")
    base = {"checkpoint_url": ":memory:", "session_db": ":memory:", "telegram_token": "1:abc"}
    webhook = create_app(Settings(**base, telegram_mode="webhook"))
    assert webhook.url_path_for("telegram_webhook") == "/telegram/webhook"
    with pytest.raises(NoMatchFound):
        create_app(Settings(**base, telegram_mode="polling")).url_path_for("telegram_webhook")
