"""``craft bench --suite agent``: what a user waits for, on this machine.

Scripted conversations (one per test occupation) through the advisor's public entry point, each: name the
goal → "nothing yet" (a recommendation turn with explanations) → "only free courses" (a refinement, again
explained) → "why the first one?" → "what does a <occupation> need?". Per turn type: p50/p95 latency; for
recommendation turns also the time to the first streamed token and to the course cards. Process RSS (peak
of the samples taken after every turn) and the explanation template-fallback rate are reported as well.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from pydantic import BaseModel
from rich.console import Console
from tqdm import tqdm

from craft.settings import Settings
from knowledge.store import get_knowledge


class TurnTiming(BaseModel):
    kind: str
    seconds: float
    first_token_s: float | None
    cards_s: float | None
    courses: int


class AgentBench(BaseModel):
    conversations: int
    explain_backend: str
    ranker: str
    turns: dict[str, dict[str, float]]
    first_token: dict[str, float]
    cards: dict[str, float]
    full_recommendation: dict[str, float]
    rss_peak_mb: float
    rss_after_warmup_mb: float
    warmup_s: float
    explanations: dict[str, Any]


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(array, 50)), 3),
        "p95": round(float(np.percentile(array, 95)), 3),
        "max": round(float(array.max()), 3),
    }


async def _turn(advisor: Any, thread: str, text: str, kind: str) -> TurnTiming:
    start = time.perf_counter()
    first = cards = None
    courses = 0
    async for event in advisor.stream(thread, text):
        now = time.perf_counter() - start
        if event["event"] == "token" and first is None:
            first = now
        elif event["event"] == "recommendations":
            cards = now
            courses = len(event["items"])
    return TurnTiming(
        kind=kind, seconds=time.perf_counter() - start, first_token_s=first, cards_s=cards, courses=courses
    )


def bench_occupations(settings: Settings, n: int) -> list[str]:
    """The first ``n`` occupations of the gold test set, then of silver's test split (as ``craft eval``)."""
    from evaluation.harness import resolve_ground_truth, select_queries
    from knowledge.course_skills import load_course_skills

    kb = get_knowledge(settings)
    skills = load_course_skills(settings)
    chosen: list[str] = []
    for truth in ("gold", "silver"):
        qrels, _, gold = resolve_ground_truth(settings, kb, truth, skills, None)
        queries, _ = select_queries(kb, qrels, "test", gold.queries() if gold else [], None)
        chosen += [q for q in queries if q not in chosen]
    return chosen[:n]


def run_agent_bench(
    settings: Settings, out_dir: Path, *, conversations: int = 20, console: Console | None = None
) -> AgentBench:
    from agent.advisor import Advisor

    kb = get_knowledge(settings)
    occupations = bench_occupations(settings, conversations)
    process = psutil.Process()
    settings = settings.model_copy(update={"checkpoint_url": ":memory:"})

    async def run() -> AgentBench:
        timings: list[TurnTiming] = []
        rss: list[float] = []
        async with Advisor(settings) as advisor:
            tick = time.perf_counter()
            await asyncio.to_thread(advisor.services.warm, True)
            warmup = time.perf_counter() - tick
            rss_warm = process.memory_info().rss / 2**20
            for uri in tqdm(occupations, desc="agent conversations", disable=console is None):
                label = kb.occupations[uri].label("en")
                thread = f"bench-{uuid.uuid4().hex}"
                script = [
                    (f"I'd like to become a {label}", "goal"),
                    ("nothing yet", "recommend"),
                    ("only free courses", "refine"),
                    ("why the first one?", "why"),
                    (f"what does a {label} need?", "question"),
                ]
                for text, kind in script:
                    timing = await _turn(advisor, thread, text, kind)
                    state = await advisor.state(thread)
                    if kind == "goal" and state.candidates:  # pick the intended occupation, then go on
                        uris = [c.uri for c in state.candidates]
                        pick = str(uris.index(uri) + 1) if uri in uris else "1"
                        timings.append(timing)
                        timing = await _turn(advisor, thread, pick, "choose")
                    timings.append(timing)
                    rss.append(process.memory_info().rss / 2**20)
                await advisor.delete(thread)
            stats = advisor.services.generator.stats
        by_kind: dict[str, list[float]] = defaultdict(list)
        for t in timings:
            by_kind[t.kind].append(t.seconds)
        explained = [t for t in timings if t.kind in ("recommend", "refine") and t.courses]
        return AgentBench(
            conversations=len(occupations),
            explain_backend=settings.explain_backend,
            ranker=settings.agent_ranker,
            turns={kind: _summary(values) for kind, values in sorted(by_kind.items())},
            first_token=_summary([t.first_token_s for t in explained if t.first_token_s is not None]),
            cards=_summary([t.cards_s for t in explained if t.cards_s is not None]),
            full_recommendation=_summary([t.seconds for t in explained if t.kind == "recommend"]),
            rss_peak_mb=round(max(rss, default=rss_warm), 1),
            rss_after_warmup_mb=round(rss_warm, 1),
            warmup_s=round(warmup, 2),
            explanations={
                "model": stats.model,
                "template": stats.template,
                "fallback_rate": round(stats.fallback_rate, 3),
                "reasons": dict(stats.reasons.most_common(6)),
            },
        )

    result = asyncio.run(run())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "agent_bench.json").write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    _plot(result, out_dir / "agent_latency.png")
    if console:
        console.print(json.dumps(result.model_dump(), indent=2))
    return result


def _plot(result: AgentBench, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(result.turns)
    p50 = [result.turns[k]["p50"] for k in kinds]
    p95 = [result.turns[k]["p95"] for k in kinds]
    x = np.arange(len(kinds))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(x - 0.2, p50, 0.4, label="p50")
    ax.bar(x + 0.2, p95, 0.4, label="p95")
    ax.set_xticks(x, kinds)
    ax.set_ylabel("seconds per turn")
    ax.set_title(f"Advisor turn latency ({result.conversations} conversations, {result.explain_backend})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
