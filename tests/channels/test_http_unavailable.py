"""A course store that cannot be reached (the Chroma server down) answers turns that need retrieval with
503 ``unavailable`` (JSON) or an ``error`` event (stream), keeps the conversation, and recovers once it is
back. The real agent and retriever; the retriever sits behind a switch that fails like Chroma's HTTP client
does when its server is gone (an ``httpx.ConnectError``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from agent.context import Services
from channels.http import create_app
from craft.settings import Settings
from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse

pytestmark = [pytest.mark.slow, pytest.mark.data]


class Switchable(Retriever):
    """The real retriever, or a refused connection while ``down``."""

    name = "switchable"

    def __init__(self, inner: Retriever) -> None:
        self.inner = inner
        self.down = False

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return self.inner.retrieve(query, k)


@pytest.fixture(scope="module")
def retriever(agent_settings: Settings) -> Switchable:
    return Switchable(Services(agent_settings).finder.retriever)


@pytest.fixture(scope="module")
def client(
    agent_settings: Settings, retriever: Switchable, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    services = Services(agent_settings)
    services.finder.retriever = retriever
    settings = agent_settings.model_copy(
        update={"session_db": str(tmp_path_factory.mktemp("down") / "s.sqlite"), "rate_limit_per_minute": 0}
    )
    with TestClient(create_app(settings, services=services, warm=False)) as client:
        yield client


def test_retrieval_down_is_503_then_recovers(client: TestClient, retriever: Switchable) -> None:
    sid = client.post("/v1/sessions", json={}).json()["session_id"]
    url = f"/v1/sessions/{sid}/messages"
    assert client.post(url, json={"text": "I'd like to become a data analyst"}).status_code == 200

    retriever.down = True
    response = client.post(url, json={"text": "nothing yet"})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "unavailable" and "try again" in error["message"]
    assert "Traceback" not in response.text and "Errno" not in response.text

    with client.stream(
        "POST", url, json={"text": "show me courses"}, headers={"Accept": "text/event-stream"}
    ) as r:
        lines = list(r.iter_lines())
    names = [line[6:].strip() for line in lines if line.startswith("event:")]
    assert names[-1] == "error" and "done" not in names
    data = json.loads(next(line for line in reversed(lines) if line.startswith("data:"))[5:])
    assert data["code"] == "unavailable"
    # what the user said before is kept; questions that need no retrieval still work
    profile = client.get(f"/v1/sessions/{sid}").json()
    assert profile["target_occupation"] is not None and profile["recommendations"] == []
    assert client.post(url, json={"text": "hello"}).status_code == 200

    retriever.down = False
    response = client.post(url, json={"text": "show me courses"})
    assert response.status_code == 200, response.text
    assert response.json()["recommendations"]
    metrics = client.get("/metrics").text
    assert 'craft_turns_total{channel="api",mode="json",outcome="unavailable"} 1.0' in metrics
    assert 'craft_errors_total{code="unavailable"}' in metrics
