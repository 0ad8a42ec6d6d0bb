"""Schemathesis against the app's own OpenAPI schema, over the real advisor: every operation gets generated
requests (bounded: 20 examples each), session operations run on real sessions (JSON and streamed turns on
random text), admin operations carry the key. No response may be a 5xx, and every response must match what
the schema documents (status, content type, body)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from channels.http import create_app
from craft.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.data]

API_KEY = "fuzz-admin-key-0123456789"


# Loaded at import (schemathesis parametrizes at collection); nothing is read until the first request, and
# the test asks for ``agent_settings`` so the knowledge base is built (or the test skipped) before that.
# Same settings as ``agent_settings``: the real store, in-memory conversations, template explanations.
app = create_app(
    Settings().model_copy(
        update={
            "checkpoint_url": ":memory:",
            "explain_backend": "template",
            "session_db": ":memory:",
            "api_keys": [API_KEY],
            "rate_limit_per_minute": 0,
            "max_message_chars": 400,  # longer random texts: 413 at once, not a lookup of seconds
        }
    ),
    warm=False,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
# The coverage phase enumerates every boundary of every field (≈190 requests for /v1/recommend alone, 80 s);
# the fuzzing phase's 20 examples per operation keep this bounded. Unexpected methods: test_http_api.
schema.config.phases.coverage.enabled = False


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_responses_match_the_schema(
    case: schemathesis.Case, agent_settings: Settings
) -> None:
    headers: dict[str, str] = {}
    path = case.operation.path
    if path.startswith("/v1/sessions/{session_id}"):
        created = case.operation.schema["/v1/sessions"]["POST"].Case(body={}).call()
        assert created.status_code == 201
        case.path_parameters = {**(case.path_parameters or {}), "session_id": created.json()["session_id"]}
        if path.endswith("/messages") and len(str(case.body)) % 2:
            headers["Accept"] = "text/event-stream"
    if path.startswith("/v1/admin"):
        headers["X-API-Key"] = API_KEY
    # unknown query parameters are ignored (HTTP convention) and the admin key is always sent here, so
    # requests schemathesis makes "invalid" that way are rightly accepted: that one check is left out
    response = case.call_and_validate(headers=headers, excluded_checks=[negative_data_rejection])
    assert response.status_code < 500, response.text
