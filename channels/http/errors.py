"""One error shape for every failure, ``{"error": {"code", "message"}}``: never a stack trace, a prompt or the
user's own input echoed back; unexpected failures are logged here and answered with a generic 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("craft.http")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}
INTERNAL_MESSAGE = (
    "Something went wrong on our side. Please try again; if it keeps happening, start a new session."
)
UNAVAILABLE_MESSAGE = (
    "The course search is temporarily unavailable. Please try again in a moment; your conversation is kept."
)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable machine-readable code, e.g. not_found, too_large, rate_limited.")
    message: str = Field(description="What went wrong, written for the person using the client.")
    details: list[dict[str, Any]] | None = Field(
        None, description="Per-field problems of an invalid request."
    )


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class ApiError(Exception):
    """Raised by routes and dependencies; answered as ``{"error": {"code", "message"}}``."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=dict(headers or {}))


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, its causes and contexts, and the members of exception groups (LangGraph, anyio)."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def is_unavailable(error: BaseException) -> bool:
    """A backing service (the Chroma server, an OpenAI-compatible model server) cannot be reached: the
    request is fine and will work once it is back, so it is a 503, not a 500. httpx transport errors are what
    Chroma's HTTP client raises mid-request; it turns a refused connection at start-up into a ValueError."""
    for current in _chain(error):
        if isinstance(current, httpx.TransportError | ConnectionError | TimeoutError):
            return True
        if isinstance(current, ValueError) and str(current).startswith("Could not connect to"):
            return True
    return False


def _validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, without the offending input (it may be long, or the user's private text)."""
    return [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": str(item.get("msg", "")),
            "type": item.get("type"),
        }
        for item in error.errors()[:20]
    ]


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    _count(request, error.code)
    return error_response(error.status, error.code, error.message, headers=error.headers)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = CODES.get(error.status_code, "error")
    message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    _count(request, code)
    return error_response(error.status_code, code, message, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first route's)."""
    routes = request.app.router.routes
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = _validation_details(error)
    fields = ", ".join(".".join(d["loc"][1:] or d["loc"]) for d in details[:5])
    _count(request, "invalid_request")
    return error_response(422, "invalid_request", f"The request is not valid ({fields}).", details=details)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    if is_unavailable(error):
        log.warning("backing service unavailable: %s", type(error).__name__)
        _count(request, "unavailable")
        return error_response(503, "unavailable", UNAVAILABLE_MESSAGE)
    log.error("unhandled error on %s %s", request.method, _route(request), exc_info=error)
    _count(request, "internal")
    return error_response(500, "internal", INTERNAL_MESSAGE)


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def _count(request: Request, code: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(code).inc()


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer (all with the one error body)."""
    return {
        status: {"model": ErrorResponse, "description": CODES.get(status, "error")} for status in statuses
    }
