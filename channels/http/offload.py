"""Blocking tool calls (encoders, Chroma) off the event loop, with their failures mapped to API errors: user
text the tool refuses is a 422 with the tool's own message, an unreachable backing service a 503."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from channels.http.errors import UNAVAILABLE_MESSAGE, ApiError, is_unavailable
from tools.lookup import InvalidQuery

P = ParamSpec("P")
T = TypeVar("T")


async def offload(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except InvalidQuery as error:
        raise ApiError(422, "invalid_request", str(error)) from error
    except Exception as error:
        if is_unavailable(error):
            raise ApiError(503, "unavailable", UNAVAILABLE_MESSAGE) from error
        raise
