"""``create_app``: the FastAPI app over ONE ``Advisor`` per process.

The lifespan opens the advisor (its checkpointer), the session registry and the feedback store, then warms
the models and indexes in a background task: ``/healthz`` answers at once, ``/readyz`` turns ready when the
warm-up is done (a failed warm-up, e.g. the Chroma server still starting, is retried with back-off). On
shutdown, turns in flight finish before the checkpointer closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, Response

from agent.advisor import Advisor
from agent.context import Services
from channels.http import errors
from channels.http.db import session_db_path
from channels.http.errors import is_unavailable
from channels.http.feedback_store import FeedbackStore
from channels.http.metrics import Metrics
from channels.http.middleware import BodySizeLimit, RequestMetrics
from channels.http.ratelimit import TokenBucketLimiter
from channels.http.routes import admin, health, occupations, recommend, sessions
from channels.http.sessions_store import SessionStore
from channels.http.turns import TurnRunner
from craft.settings import Settings, get_settings

if TYPE_CHECKING:
    from telegram.request import BaseRequest

log = logging.getLogger("craft.http")

WIDGET_DIR = Path(__file__).resolve().parents[1] / "widget" / "static"
DRAIN_TIMEOUT_S = 30.0
WARM_RETRY_MAX_S = 60.0
STATIC_CACHE = "public, max-age=300"


@dataclass
class Readiness:
    ready: bool = False
    status: str = "loading"


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    warm: bool = True,
    telegram_request: BaseRequest | None = None,
) -> FastAPI:
    """``services``: the advisor's loaded components (default: the process-wide ones for ``settings``);
    ``warm=False`` skips the start-up warm-up (ready at once, the first turn loads what it needs);
    ``telegram_request``: the bot's transport to the Bot API in webhook mode (tests pass a stand-in)."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = session_db_path(settings)
        async with AsyncExitStack() as stack:
            advisor = await stack.enter_async_context(Advisor(settings, services=services, explain=True, k=5))
            app.state.advisor = advisor
            app.state.sessions = await stack.enter_async_context(SessionStore(db))
            app.state.feedback = await stack.enter_async_context(FeedbackStore(db))
            app.state.runner = runner = TurnRunner(advisor, app.state.sessions, metrics, settings)
            if telegram:
                await _start_telegram(app, stack, advisor, settings, telegram_request)
            readiness = app.state.readiness
            task = asyncio.create_task(_warm(advisor, readiness, metrics)) if warm else None
            if task is None:
                readiness.ready, readiness.status = True, "loaded"
                metrics.ready.set(1)
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                await runner.drain(DRAIN_TIMEOUT_S)

    app = FastAPI(
        title="CRAFT course advisor API",
        version="1.0.0",
        description="Conversational course advice grounded in ESCO: sessions, streamed replies, profiles, "
        "feedback, stateless recommendations and occupation lookup. "
        'Errors: `{"error": {"code", "message"}}`.',
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.readiness = Readiness()
    app.state.limiter = (
        TokenBucketLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute > 0 else None
    )
    errors.install(app)
    for router in (sessions.router, recommend.router, occupations.router, admin.router, health.router):
        app.include_router(router)
    telegram = _mount_telegram(app, settings)
    _mount_widget(app)
    # outermost last: metrics see everything, CORS headers reach error responses too
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Accept", "X-API-Key", "Last-Event-ID"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


async def _warm(advisor: Advisor, readiness: Readiness, metrics: Metrics) -> None:
    """Load the encoders, indexes and explanation backend now rather than in the first user's turn."""
    delay, start = 1.0, time.perf_counter()
    while True:
        try:
            await asyncio.to_thread(advisor.services.warm, advisor.context.explain)
        except Exception as error:
            readiness.status = "waiting for a backing service" if is_unavailable(error) else "warm-up failed"
            log.warning(
                "warm-up failed (%s); retrying in %.0f s", type(error).__name__, delay, exc_info=error
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, WARM_RETRY_MAX_S)
            continue
        readiness.ready, readiness.status = True, "loaded"
        metrics.ready.set(1)
        log.info("ready: models and indexes loaded in %.1f s", time.perf_counter() - start)
        return


def _mount_telegram(app: FastAPI, settings: Settings) -> bool:
    """Include the Telegram webhook route (``channels.telegram.webhook``) when a bot token is configured in
    webhook mode; True when it was."""
    if not settings.telegram_token or settings.telegram_mode != "webhook":
        return False
    try:
        from channels.telegram.webhook import router as telegram_router
    except ImportError as error:
        log.warning("telegram webhook mode is configured but cannot be imported: %s", error)
        return False
    app.include_router(telegram_router)
    return True


async def _start_telegram(
    app: FastAPI,
    stack: AsyncExitStack,
    advisor: Advisor,
    settings: Settings,
    request: BaseRequest | None,
) -> None:
    """Run the bot's ``Application`` for the webhook (``app.state.telegram``), registering the webhook at
    ``public_url`` when set; a Bot API that cannot be reached leaves the API serving without the bot."""
    from telegram.error import TelegramError

    from channels.telegram.bot import FEEDBACK_KEY, build_application
    from channels.telegram.webhook import PATH, running

    url = settings.public_url.rstrip("/") + PATH if settings.public_url else None
    application = build_application(advisor, settings, request=request, updater=False)
    application.bot_data[FEEDBACK_KEY] = app.state.feedback
    try:
        app.state.telegram = await stack.enter_async_context(running(application, webhook_url=url))
    except (TelegramError, ValueError) as error:
        log.warning("the Telegram bot is not running: %s", error)


def _mount_widget(app: FastAPI) -> None:
    """The embeddable widget (``channels/widget/static``) and a demo host page that loads it with one tag."""
    if not WIDGET_DIR.is_dir():
        return

    def static(name: str, media_type: str) -> Response:
        path = WIDGET_DIR / name
        if not path.is_file():
            return errors.error_response(404, "not_found", "Not Found")
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": STATIC_CACHE})

    @app.get("/widget.js", include_in_schema=False)
    async def widget_js() -> Response:
        return static("widget.js", "text/javascript; charset=utf-8")

    @app.get("/widget.css", include_in_schema=False)
    async def widget_css() -> Response:
        return static("widget.css", "text/css; charset=utf-8")

    @app.get("/demo", include_in_schema=False)
    async def demo() -> Response:
        if (WIDGET_DIR / "demo.html").is_file():
            return static("demo.html", "text/html; charset=utf-8")
        return HTMLResponse(DEMO_PAGE)


DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CRAFT course advisor: demo host page</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; }
</style>
</head>
<body>
<main>
<h1>A page that knows nothing about the advisor</h1>
<p>This page embeds the CRAFT course advisor with a single script tag; open the chat bubble in the corner.</p>
</main>
<script src="/widget.js" data-craft-url="/"></script>
</body>
</html>
"""


def configure_logging() -> None:
    """Our INFO lines (ready, per-turn timings: never message text) on stderr, however uvicorn was started."""
    logger = logging.getLogger("craft")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def run(settings: Settings | None = None, *, host: str | None = None, port: int | None = None) -> None:
    """Serve with uvicorn. No access log: uvicorn's names the path, and a session id in a path is a
    capability (our own per-request log names the route template instead)."""
    import uvicorn

    settings = settings or get_settings()
    configure_logging()
    uvicorn.run(
        create_app(settings),
        host=host or settings.server_host,
        port=port or settings.server_port,
        access_log=False,
        proxy_headers=True,
    )
