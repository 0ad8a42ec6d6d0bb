"""Offline helpers for the API client tests: a fake clock, recorded MockTransports, settings in tmp."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from craft.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "api"


def load_fixture(name: str) -> Any:
    return copy.deepcopy(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


class FakeTime:
    """Clock and sleep in one: sleeping advances the clock and is recorded, nothing really waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


class Recorder:
    """A MockTransport that records every request it answers."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response], clock: FakeTime | None = None):
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.clock = clock
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(self.clock.now if self.clock else 0.0)
        return self.handler(request)

    @property
    def calls(self) -> int:
        return len(self.requests)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "cache_dir": tmp_path / "cache",
            "http_retries": 3,
            "http_rate_per_s": 0,
            "offline": False,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def client_kwargs(fake_time: FakeTime) -> Callable[[Recorder], dict[str, Any]]:
    def kwargs(recorder: Recorder) -> dict[str, Any]:
        return {
            "transport": recorder.transport,
            "sleep": fake_time.sleep,
            "clock": fake_time.monotonic,
            "now": fake_time.wall,
        }

    return kwargs


@pytest.fixture
def recorder(fake_time: FakeTime) -> Callable[[Callable[[httpx.Request], httpx.Response]], Recorder]:
    """``recorder(handler)`` → a recording MockTransport whose timestamps follow the fake clock."""

    def make(handler: Callable[[httpx.Request], httpx.Response]) -> Recorder:
        return Recorder(handler, clock=fake_time)

    return make


@pytest.fixture
def fixture_json() -> Callable[[str], Any]:
    return load_fixture
