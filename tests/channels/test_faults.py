"""Faults on real processes: the API server SIGKILLed mid-turn comes back on the same SQLite files and the
conversation goes on; a Chroma server that goes away turns retrieval into a clear 503 (the conversation
kept, ``/readyz`` not ready, ``/healthz`` alive) and the API recovers by itself once Chroma is back.

One Chroma server and at most two API server processes for the whole module (each start loads the models:
~25 s on two cores): the SIGKILL test restarts the API, and the Chroma test reuses whichever one runs.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from rich.console import Console

from agent.advisor import Advisor
from agent.state import Phase
from craft.settings import Settings
from evaluation.load_bench import _free_port, start_server, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.data]

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
API_READY_S = 240.0  # models load on the first start: ~25 s alone, more beside a busy CI run
CHROMA_START_S = 30.0
RECOVERY_S = 30.0  # the API must be ready and answering again within this after Chroma is back
STOP_S = 15.0

GOAL = "I'd like to become a data analyst"
SKILL = "I know SQL"
FREE = "only free courses"
SHOW = "show me courses"
SSE = {"Accept": "text/event-stream"}


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` and reap; SIGKILL when it does not exit in time (never leave a server behind)."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_S)


@dataclass
class ChromaServer:
    """``chroma run`` (the installed chromadb's own server, through its Python entry point) on loopback."""

    path: Path
    log: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def heartbeat(self) -> str:
        return f"http://{HOST}:{self.port}/api/v2/heartbeat"

    def start(self) -> float:
        """Start on ``path`` and ``port`` and wait for its heartbeat; the seconds it took."""
        command = [
            sys.executable, "-c", "from chromadb.cli.cli import app; app()",
            "run", "--path", str(self.path), "--host", HOST, "--port", str(self.port),
        ]  # fmt: skip
        tick = time.monotonic()
        for _attempt in range(3):  # the port may still be held for a moment right after a stop
            with self.log.open("ab") as sink:
                self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
            while time.monotonic() - tick < CHROMA_START_S and self.process.poll() is None:
                try:
                    if httpx.get(self.heartbeat, timeout=2).status_code == 200:
                        return time.monotonic() - tick
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            if self.process.poll() is None:
                break
            time.sleep(1)
        _stop(self.process, signal.SIGKILL)
        raise RuntimeError(f"the Chroma server did not start:\n{_tail(self.log)}")

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class ApiServer:
    """``uvicorn server:app`` (evaluation.load_bench.start_server) on a fresh port per start."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    base: str = ""

    def start(self) -> float:
        """Start and wait for ``/readyz``; the seconds it took."""
        port = _free_port()
        self.base = f"http://{HOST}:{port}"
        tick = time.monotonic()
        args = ["--no-access-log", "--app-dir", str(ROOT)]
        self.process = start_server(port, self.env, self.log, extra_args=args)
        try:
            asyncio.run(wait_ready(self.base, API_READY_S, process=self.process))
        except (RuntimeError, TimeoutError) as error:
            _stop(self.process, signal.SIGKILL)
            raise RuntimeError(f"{error}\n{_tail(self.log)}") from error
        return time.monotonic() - tick

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no drain, no checkpointer close."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_S)

    def stop(self) -> None:
        _stop(self.process)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=120)


@dataclass
class Stack:
    settings: Settings
    chroma: ChromaServer
    api: ApiServer
    checkpoint_url: str
    timings: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def stack(enriched_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A Chroma server holding the label indexes (what ``craft setup`` does in deployment; the course
    collections the API syncs itself), and the API over it with SQLite conversations in a temporary folder."""
    from knowledge.indexes import build_indexes

    work = tmp_path_factory.mktemp("faults")
    chroma = ChromaServer(work / "chroma", work / "chroma.log")
    checkpoint_url = f"sqlite:///{work / 'conversations.sqlite'}"
    settings = enriched_settings.model_copy(
        update={"chroma_host": HOST, "chroma_port": chroma.port, "checkpoint_url": checkpoint_url}
    )
    env = {
        **os.environ,
        "CRAFT_DATA_DIR": str(settings.data_dir.resolve()),
        "CRAFT_STORE_DIR": str(settings.store_dir.resolve()),
        "CRAFT_MODEL_DIR": str(settings.model_dir.resolve()),
        "CRAFT_CACHE_DIR": str(settings.cache_dir.resolve()),
        "CRAFT_CHECKPOINT_URL": checkpoint_url,
        "CRAFT_SESSION_DB": str(work / "sessions.sqlite"),
        "CRAFT_EXPLAIN_BACKEND": "template",
        "CRAFT_RATE_LIMIT_PER_MINUTE": "0",
        "CRAFT_CHROMA_HOST": HOST,
        "CRAFT_CHROMA_PORT": str(chroma.port),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("CRAFT_INDEX_SAMPLE", None)
    if settings.index_sample is not None:
        env["CRAFT_INDEX_SAMPLE"] = str(settings.index_sample)
    api = ApiServer(env, work / "api.log")
    stack = Stack(settings, chroma, api, checkpoint_url)
    try:
        stack.timings["chroma_start_s"] = chroma.start()
        tick = time.monotonic()
        build_indexes(settings, console=Console(file=io.StringIO()))
        stack.timings["label_indexes_s"] = time.monotonic() - tick
        stack.timings["api_ready_s"] = api.start()
        yield stack
    finally:
        api.stop()
        chroma.stop()
        print(f"\nfault-test timings: { {k: round(v, 1) for k, v in stack.timings.items()} }")


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.status_code} {response.text[:500]}"
    return response.json()


async def _messages(settings: Settings, session_id: str) -> tuple[list[object], int]:
    """The stored dialogue and turn count, read from the checkpoint file by an Advisor of our own."""
    async with Advisor(settings, explain=False) as advisor:
        state = await advisor.state(session_id)
    return list(state.messages), state.turn


def test_sigkill_mid_turn_then_restart_continues(stack: Stack) -> None:
    api = stack.api
    with api.client() as client:
        sid = client.post("/v1/sessions", json={}).json()["session_id"]
        url = f"/v1/sessions/{sid}/messages"
        _ok(client.post(url, json={"text": GOAL}))
        before = _ok(client.post(url, json={"text": SKILL}))["profile"]
        assert before["turn"] == 2 and before["target_occupation"]["label"] == "data analyst"

        first: str | None = None
        with client.stream("POST", url, json={"text": FREE}, headers=SSE) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event:"):
                    first = line.removeprefix("event:").strip()
                    api.kill()  # the turn is in flight: events are still to come
                    break
        assert first is not None and first not in ("done", "error"), first
        assert api.process is not None and api.process.returncode == -signal.SIGKILL

    stack.timings["api_restart_s"] = api.start()
    with api.client() as client:
        after_kill = _ok(client.get(f"/v1/sessions/{sid}"))
        # the last completed turn at least; the killed one may have been checkpointed in part or whole
        assert after_kill["target_occupation"] == before["target_occupation"]
        assert "SQL" in {s["label"] for s in after_kill["skills_have"]}
        assert after_kill["phase"] in {p.value for p in Phase}
        assert after_kill["turn"] in (2, 3), after_kill["turn"]
        print(
            f"\nSIGKILL at the first SSE event ({first!r}): after restart turn={after_kill['turn']} "
            f"phase={after_kill['phase']} free_only={after_kill['preferences']['free_only']}"
        )

        turn = _ok(client.post(url, json={"text": FREE}))
        profile = turn["profile"]
        assert profile["preferences"]["free_only"] is True
        assert profile["turn"] == after_kill["turn"] + 1
        assert profile["target_occupation"] == before["target_occupation"]
        assert "SQL" in {s["label"] for s in profile["skills_have"]}
        assert all(card["free"] is not False for card in turn["recommendations"])
        assert _ok(client.get(f"/v1/sessions/{sid}"))["turn"] == profile["turn"]

    messages, stored_turn = asyncio.run(_messages(stack.settings, sid))
    said = [m.content for m in messages if isinstance(m, HumanMessage)]
    replies = [m for m in messages if isinstance(m, AIMessage)]
    assert said[:2] == [GOAL, SKILL] and said[2:] in ([FREE], [FREE, FREE]), said
    assert stored_turn == profile["turn"] == len(said)
    # every completed turn has its reply; only the killed one may lack it
    assert len(replies) in (len(said), len(said) - 1)
    assert isinstance(messages[-1], AIMessage) and messages[-1].content == turn["reply"]


def test_chroma_down_is_503_then_recovers(stack: Stack) -> None:
    api, chroma = stack.api, stack.chroma
    with api.client() as client:
        sid = client.post("/v1/sessions", json={}).json()["session_id"]
        url = f"/v1/sessions/{sid}/messages"
        _ok(client.post(url, json={"text": GOAL}))
        assert _ok(client.post(url, json={"text": SKILL}))["recommendations"]
        assert _ok(client.get("/readyz"))["checks"]["chroma"] == "ok"

        chroma.stop()
        response = client.post(url, json={"text": SHOW})
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "unavailable" and "try again" in error["message"], error
        assert "Traceback" not in response.text and "Errno" not in response.text
        with client.stream("POST", url, json={"text": SHOW}, headers=SSE) as streamed:
            assert streamed.status_code == 200
            lines = list(streamed.iter_lines())
        events = [line.removeprefix("event:").strip() for line in lines if line.startswith("event:")]
        assert events[-1] == "error" and "done" not in events, events
        last = json.loads(next(x for x in reversed(lines) if x.startswith("data:")).removeprefix("data:"))
        assert last["code"] == "unavailable"

        ready = client.get("/readyz")
        assert ready.status_code == 503 and "chroma: unreachable" in ready.json()["error"]["message"]
        assert _ok(client.get("/healthz"))["status"] == "ok"
        kept = _ok(client.get(f"/v1/sessions/{sid}"))
        assert kept["target_occupation"]["label"] == "data analyst"
        assert "SQL" in {s["label"] for s in kept["skills_have"]}
        print(f"\nChroma down: {response.status_code} {response.text}; /readyz: {ready.text}")

        chroma.start()
        tick = time.monotonic()
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() - tick < RECOVERY_S, f"not ready {RECOVERY_S:.0f} s after Chroma is back"
            time.sleep(0.2)
        stack.timings["readyz_recovery_s"] = time.monotonic() - tick
        recovered = _ok(client.post(url, json={"text": SHOW}))
        stack.timings["first_turn_after_recovery_s"] = time.monotonic() - tick
        assert recovered["recommendations"]
        assert recovered["profile"]["target_occupation"]["label"] == "data analyst"
