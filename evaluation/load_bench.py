"""``craft bench --suite load``: the HTTP API under concurrent conversations, on loopback.

Starts the real server (``uvicorn server:app``) as a subprocess with its own conversation database, waits
for ``/readyz``, then runs ``sessions`` concurrent conversations of ``turns`` messages each with an asyncio
httpx client (template explanations: no LLM on these turns). Reports per-request latency p50/p95/max by
turn kind, errors (any non-2xx or transport failure), throughput and the server process's peak RSS.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import psutil
from pydantic import BaseModel
from rich.console import Console

# Ten turns that exercise every path a job seeker takes: goal, skills, refinements, feedback, questions.
SCRIPT: list[tuple[str, str]] = [
    ("goal", "I'd like to become a {occupation}"),
    ("skills", "I know {skill}"),
    ("refine", "only free courses"),
    ("why", "why the first one?"),
    ("refine", "more beginner"),
    ("feedback", "I don't like the second one"),
    ("question", "what does a {occupation} need?"),
    ("refine", "in English"),
    ("profile", "what do you know about me?"),
    ("recommend", "show me courses"),
]
OCCUPATIONS = [
    ("data analyst", "SQL"),
    ("web developer", "JavaScript"),
    ("baker", "food safety"),
    ("accountant", "bookkeeping"),
    ("software developer", "Python"),
    ("electrician", "electrical wiring"),
    ("cook", "food hygiene"),
    ("graphic designer", "Adobe Photoshop"),
]


class LoadResult(BaseModel):
    sessions: int
    turns_per_session: int
    requests: int
    errors: int
    error_examples: list[str]
    seconds: float
    requests_per_s: float
    latency_ms: dict[str, float]
    latency_by_kind_ms: dict[str, dict[str, float]]
    server_rss_peak_mb: float
    server_rss_start_mb: float


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000
    if not len(array):
        return {}
    return {
        "p50": round(float(np.percentile(array, 50)), 1),
        "p95": round(float(np.percentile(array, 95)), 1),
        "max": round(float(array.max()), 1),
    }


def start_server(
    port: int, env: dict[str, str], log: Path, extra_args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """``uvicorn server:app`` on loopback (plus ``extra_args`` for uvicorn); its output goes to ``log``."""
    command = [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as sink:
        return subprocess.Popen([*command, *extra_args], env=env, stdout=sink, stderr=subprocess.STDOUT)


async def wait_ready(
    base: str, timeout_s: float = 900, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``/readyz`` until 200; with ``process``, fail at once when the server exits instead."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the server at {base} exited with status {process.returncode}")
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(1)
    raise TimeoutError(f"{base} not ready after {timeout_s:.0f} s")


async def _conversation(
    client: httpx.AsyncClient, i: int, turns: int, timings: dict[str, list[float]], errors: list[str]
) -> None:
    occupation, skill = OCCUPATIONS[i % len(OCCUPATIONS)]
    try:
        response = await client.post("/v1/sessions", json={"channel": "load-test"})
        response.raise_for_status()
        session = response.json()["session_id"]
    except httpx.HTTPError as error:
        errors.append(f"create: {type(error).__name__}: {error}")
        return
    for kind, template in (SCRIPT * (turns // len(SCRIPT) + 1))[:turns]:
        text = template.format(occupation=occupation, skill=skill)
        tick = time.perf_counter()
        try:
            response = await client.post(f"/v1/sessions/{session}/messages", json={"text": text})
            timings[kind].append(time.perf_counter() - tick)
            if response.status_code >= 300:
                errors.append(f"{kind}: HTTP {response.status_code} {response.text[:120]}")
        except httpx.HTTPError as error:
            errors.append(f"{kind}: {type(error).__name__}: {error}")


async def _load(
    base: str, sessions: int, turns: int, pid: int
) -> tuple[dict[str, list[float]], list[str], float, float]:
    timings: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    process = psutil.Process(pid)
    peak = 0.0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, process.memory_info().rss / 2**20)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    tick = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        await asyncio.gather(*(_conversation(client, i, turns, timings, errors) for i in range(sessions)))
    seconds = time.perf_counter() - tick
    sampler.cancel()
    return timings, errors, seconds, peak


def run_load_bench(
    out_dir: Path,
    *,
    sessions: int = 50,
    turns: int = 10,
    env: dict[str, str] | None = None,
    console: Console | None = None,
) -> LoadResult:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="craft-load-"))
    server_env = {
        **os.environ,
        "CRAFT_CHECKPOINT_URL": f"sqlite:///{workdir / 'conversations.sqlite'}",
        "CRAFT_SESSION_DB": str(workdir / "sessions.sqlite"),
        "CRAFT_EXPLAIN_BACKEND": "template",
        "CRAFT_RATE_LIMIT_PER_MINUTE": "0",  # one client IP plays every user here
        **(env or {}),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    server = start_server(port, server_env, out_dir / "load_server.log")
    try:
        asyncio.run(wait_ready(base))
        start_rss = psutil.Process(server.pid).memory_info().rss / 2**20
        if console:
            console.print(f"server ready on {base} ({start_rss:.0f} MB); {sessions} sessions x {turns} turns")
        timings, errors, seconds, peak = asyncio.run(_load(base, sessions, turns, server.pid))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    everything = [t for values in timings.values() for t in values]
    result = LoadResult(
        sessions=sessions,
        turns_per_session=turns,
        requests=len(everything) + sessions,
        errors=len(errors),
        error_examples=errors[:5],
        seconds=round(seconds, 1),
        requests_per_s=round(len(everything) / seconds, 2) if seconds else 0.0,
        latency_ms=_summary(everything),
        latency_by_kind_ms={kind: _summary(values) for kind, values in sorted(timings.items())},
        server_rss_peak_mb=round(peak, 1),
        server_rss_start_mb=round(start_rss, 1),
    )
    (out_dir / "load_bench.json").write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if console:
        console.print(result.model_dump())
    return result
