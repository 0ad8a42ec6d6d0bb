"""Liveness, readiness and metrics: ``/healthz`` answers as soon as the process serves; ``/readyz`` once the
models and indexes are loaded (and the Chroma server answers, when one is configured); ``/metrics`` for
Prometheus. Never rate limited (probes and scrapers poll them)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from channels.http.deps import MetricsDep, SettingsDep
from channels.http.errors import error_response, responses
from channels.http.schemas import Health
from craft.settings import Settings

router = APIRouter(tags=["health"])

CHROMA_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Health, responses=responses(503), summary="Models and indexes are loaded"
)
async def readyz(request: Request, settings: SettingsDep) -> Response:
    readiness = request.app.state.readiness
    checks = {"models": "loaded" if readiness.ready else readiness.status}
    if settings.chroma_host:
        checks["chroma"] = await _chroma(settings)
    if readiness.ready and all(v in ("loaded", "ok") for v in checks.values()):
        return JSONResponse(Health(status="ready", checks=checks).model_dump())
    waiting = ", ".join(f"{k}: {v}" for k, v in checks.items())
    return error_response(503, "not_ready", f"Not ready yet ({waiting}).")


async def _chroma(settings: Settings) -> str:
    url = f"http://{settings.chroma_host}:{settings.chroma_port}/api/v2/heartbeat"
    try:
        async with httpx.AsyncClient(timeout=CHROMA_TIMEOUT_S) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return "unreachable"
    return "ok" if response.status_code == 200 else f"status {response.status_code}"


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(metrics: MetricsDep) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
