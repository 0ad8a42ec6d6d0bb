"""``fetch``: layout written under data_dir, resumable state, offline behaviour (all via MockTransport)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from craft.settings import Settings
from knowledge.clients.esco_api import ESCO_DOWNLOAD_PAGE, OCCUPATION_COLUMNS
from knowledge.clients.http import ApiError, SourceUnavailable
from knowledge.fetch import STATE_FILE, fetch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "api"
Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        http_retries=1,
        http_rate_per_s=0,
        offline=False,
    )


class Server:
    """Records requests; ``fail`` decides per request whether to break (simulating an outage)."""

    def __init__(self, handler: Handler, fail: Callable[[httpx.Request], bool] | None = None) -> None:
        self.handler = handler
        self.fail = fail
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail and self.fail(request):
            raise httpx.ConnectError("connection reset", request=request)
        return self.handler(request)

    def options(self) -> dict[str, Any]:
        return {"transport": httpx.MockTransport(self), "sleep": lambda s: None, "use_cache": False}

    def pages(self, path_end: str = "", key: str = "page") -> list[int]:
        return [int(r.url.params[key]) for r in self.requests if r.url.path.endswith(path_end)]


# --- handlers shaped like the real APIs ------------------------------------------------------
def esco_handler(occupations: int = 5, skills: int = 3) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        kind = request.url.params["type"]
        page, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        total = occupations if kind == "occupation" else skills
        template = fixture("esco_occupation.json" if kind == "occupation" else "esco_skill.json")
        results = []
        for index in range(page * limit, min((page + 1) * limit, total)):
            record = json.loads(json.dumps(template))
            record["uri"] = record["uri"][:-3] + f"{index:03d}"
            results.append(record)
        return httpx.Response(200, json={"total": total, "_embedded": {"results": results}})

    return handle


def wb_handler(pages: int) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        payload = fixture("weiterbildungssuche_page.json")
        for i, termin in enumerate(payload["_embedded"]["termine"]):
            termin["id"] = 100 * number + i
        payload["page"].update(number=number, totalPages=pages, totalElements=2 * pages)
        return httpx.Response(200, json=payload)

    return handle


def berufenet_handler(pages: int) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/berufe"):
            number = int(request.url.params["page"])
            payload = fixture("berufenet_list_page.json")
            for i, item in enumerate(payload["_embedded"]["berufSucheList"]):
                item["id"] = 10 * (number + 1) + i
            payload["page"].update(number=number, totalPages=pages)
            return httpx.Response(200, json=payload)
        beruf_id = int(request.url.path.rsplit("/", 1)[-1])
        if beruf_id == 21:
            return httpx.Response(404, json={"message": "gibt es nicht"})
        detail = fixture("berufenet_detail.json")
        detail[0]["id"] = beruf_id
        return httpx.Response(200, json=detail)

    return handle


# --- offline ------------------------------------------------------------------------------------
def test_offline_esco_fails_fast_with_download_instructions(settings):
    server = Server(esco_handler())
    with pytest.raises(SourceUnavailable) as err:
        fetch("esco", settings.model_copy(update={"offline": True}), client_options=server.options())
    message = str(err.value)
    assert "esco" in message and ESCO_DOWNLOAD_PAGE in message and "CSV" in message
    assert str(settings.data_dir / "esco" / "v1.2.0_en") in message
    assert "occupations_en.csv" in message and "skills_en.csv" in message
    assert server.requests == []


@pytest.mark.parametrize(("source", "where"), [("berufenet", "berufenet"), ("weiterbildung", "courses")])
def test_offline_ba_sources_say_where_files_go(settings, source, where):
    server = Server(wb_handler(1))
    with pytest.raises(SourceUnavailable) as err:
        fetch(source, settings.model_copy(update={"offline": True}), client_options=server.options())
    assert str(settings.data_dir / where) in str(err.value)
    assert server.requests == []


def test_no_network_fails_fast(settings):
    server = Server(wb_handler(3), fail=lambda r: True)
    with pytest.raises(SourceUnavailable, match="weiterbildungssuche"):
        fetch("weiterbildung", settings, progress=False, client_options=server.options(), sw="Python")
    assert len(server.requests) == 1


# --- ESCO -----------------------------------------------------------------------------------
def test_esco_writes_the_official_layout(settings):
    server = Server(esco_handler(occupations=5, skills=3))
    result = fetch("esco", settings, progress=False, client_options=server.options(), limit=2)
    target = settings.data_dir / "esco" / "v1.2.0_en"
    assert result.target == target
    assert result.counts == {"occupations": 5, "skills": 3, "relations": 15}
    assert {p.name for p in result.files} == {
        "occupations_en.csv",
        "skills_en.csv",
        "occupationSkillRelations_en.csv",
    }
    with (target / "occupations_en.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == OCCUPATION_COLUMNS
    assert len(rows) == 5 and rows[0]["altLabels"] == "programmer\nsoftware engineer"
    assert not (target / STATE_FILE).exists() and not (target / ".fetch").exists()
    assert all(r.url.params["selectedVersion"] == "v1.2.0" for r in server.requests)


def test_esco_resumes_after_interruption(settings):
    broken = Server(
        esco_handler(), fail=lambda r: r.url.params["type"] == "skill" and r.url.params["offset"] == "1"
    )
    with pytest.raises(SourceUnavailable):
        fetch("esco", settings, progress=False, client_options=broken.options(), limit=2)
    target = settings.data_dir / "esco" / "v1.2.0_en"
    assert (target / STATE_FILE).exists()
    server = Server(esco_handler())
    result = fetch("esco", settings, progress=False, client_options=server.options(), limit=2)
    assert [(r.url.params["type"], r.url.params["offset"]) for r in server.requests] == [("skill", "1")]
    assert result.resumed_pages == 4
    assert result.counts["occupations"] == 5 and result.counts["skills"] == 3


def test_esco_broken_page_is_read_record_by_record(settings):
    def handle(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if params["type"] == "skill" and params["limit"] == "2" and params["offset"] == "1":
            return httpx.Response(500, json={"message": "boom"})
        if params["type"] == "skill" and params["limit"] == "1" and params["offset"] == "3":
            return httpx.Response(500, json={"message": "boom"})
        return esco_handler(occupations=1, skills=5)(request)

    result = fetch("esco", settings, progress=False, client_options=Server(handle).options(), limit=2)
    assert result.counts["skills"] == 4
    assert result.failed == ["skill #3: HTTP 500"]


# --- Weiterbildungssuche -----------------------------------------------------------------------
def test_weiterbildung_resumes_without_refetching_done_pages(settings):
    broken = Server(wb_handler(5), fail=lambda r: int(r.url.params["page"]) >= 2)
    with pytest.raises(SourceUnavailable):
        fetch("weiterbildung", settings, progress=False, client_options=broken.options(), sw="Python", size=2)
    courses = settings.data_dir / "courses"
    assert sorted(p.name for p in courses.glob("weiterbildungssuche_*.json")) == [
        "weiterbildungssuche_python_p0000.json",
        "weiterbildungssuche_python_p0001.json",
    ]
    server = Server(wb_handler(5))
    result = fetch(
        "weiterbildung", settings, progress=False, client_options=server.options(), sw="Python", size=2
    )
    assert server.pages() == [2, 3, 4]
    assert result.resumed_pages == 2
    assert result.counts == {"pages": 5, "termine": 10}
    assert all(r.url.params["sw"] == "Python" and r.url.params["size"] == "2" for r in server.requests)
    assert not list(courses.glob(".*state.json"))
    page = json.loads((courses / "weiterbildungssuche_python_p0004.json").read_text(encoding="utf-8"))
    assert page["_embedded"]["termine"][0]["id"] == 400


def test_weiterbildung_rejects_unknown_filters(settings):
    with pytest.raises(ValidationError):
        fetch("weiterbildung", settings, progress=False, suchwort="Python")


def test_weiterbildung_max_pages(settings):
    server = Server(wb_handler(9))
    result = fetch("weiterbildung", settings, progress=False, client_options=server.options(), max_pages=2)
    assert server.pages() == [0, 1] and result.counts["pages"] == 2
    assert result.files[0].name == "weiterbildungssuche_alle_p0000.json"


# --- BERUFENET -------------------------------------------------------------------------------
def test_berufenet_list_and_details_resume(settings):
    detail_calls = {"n": 0}

    def flaky_details(request: httpx.Request) -> bool:
        if request.url.path.endswith("/berufe"):
            return False
        detail_calls["n"] += 1
        return detail_calls["n"] > 2

    broken = Server(berufenet_handler(3), fail=flaky_details)
    with pytest.raises(SourceUnavailable):
        fetch("berufenet", settings, progress=False, client_options=broken.options())
    target = settings.data_dir / "berufenet"
    assert len(list((target / "details").glob("*.json"))) == 2

    server = Server(berufenet_handler(3))
    result = fetch("berufenet", settings, progress=False, client_options=server.options())
    assert not [r for r in server.requests if r.url.path.endswith("/berufe")]  # the list was complete
    assert len(server.requests) == 4  # only the details still missing
    lines = (target / "berufe.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [10, 11, 20, 21, 30, 31]
    assert json.loads(lines[1])["kurzBezeichnungNeutral"] == "Ethical Hacker"
    assert result.counts == {"berufe": 6, "details": 5}
    assert result.failed == ["beruf 21: HTTP 404"]
    detail = json.loads((target / "details" / "30.json").read_text(encoding="utf-8"))
    assert detail[0]["id"] == 30
    assert not (target / STATE_FILE).exists()


def test_berufenet_list_interrupted_midway(settings):
    broken = Server(berufenet_handler(4), fail=lambda r: r.url.params.get("page") == "2")
    with pytest.raises(SourceUnavailable):
        fetch("berufenet", settings, progress=False, client_options=broken.options(), details=False)
    server = Server(berufenet_handler(4))
    result = fetch("berufenet", settings, progress=False, client_options=server.options(), details=False)
    assert server.pages("/berufe") == [2, 3]
    assert result.counts == {"berufe": 8}


def test_server_errors_surface_as_api_errors(settings):
    server = Server(lambda r: httpx.Response(503))
    with pytest.raises(ApiError, match="HTTP 503"):
        fetch("berufenet", settings, progress=False, client_options=server.options())
    assert len(server.requests) == 2  # one try plus http_retries=1
