"""Live Weiterbildungssuche courses: occupation → BA codes → query, normalization of the answer, offline and
error degradation, dedup against the indexed catalog, and ``recommend(live=True)`` / ``--live``.

Every request goes to an ``httpx.MockTransport`` (as in tests/knowledge/clients); nothing leaves the machine.
The fast tests use a hand-written knowledge base and the small API fixture; the ``data`` tests use the real
knowledge base and the recorded response ``courses/arbeitsagentur_weiterbildungssuche_sample_2023.json``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from craft.settings import Settings, get_settings
from knowledge.ba import berufenet_ids_by_code
from knowledge.courses.adapters.arbeitsagentur import courses_from_response
from knowledge.courses.schema import Course, course_id
from knowledge.report import LoadReport
from knowledge.store import Concept, KnowledgeBase
from tools import live_courses
from tools.live_courses import (
    catalog_matches,
    location_filter,
    merge_live,
    occupation_codes,
    search_live_courses,
)
from tools.lookup import InvalidQuery

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "api"
API_PATH = "/infosysbub/wbsuche/pc/v2/bildungsangebot"
RECORDING = Path("courses") / "arbeitsagentur_weiterbildungssuche_sample_2023.json"
DATA_ANALYST = "http://data.europa.eu/esco/occupation/d3edb8f8-3a06-47a0-8fb9-9b212c006aa2"
# The BA mapping gives data analyst B 43104-132 (Data Scientist, narrowMatch) among others. The BERUFENET id
# is made up: the shared data has no BERUFENET export, the test writes the detail file such an export holds.
DATA_SCIENTIST_CODE = "B 43104-132"
DATA_SCIENTIST_ID = 990132

# the course card every channel shows (issue 6's recommendation object)
CARD_FIELDS = {
    "course_id", "source", "url", "title", "score", "covers",
    "provider", "language", "level", "format", "price", "currency", "free",
}  # fmt: skip


# --- helpers ------------------------------------------------------------------------------------------
class Server:
    """The Weiterbildungssuche as a MockTransport: ``respond(request)`` answers the search path, every
    request is recorded; waits go to ``sleeps`` instead of really sleeping."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path != API_PATH:
            return httpx.Response(404, json={"message": "not found"})
        return self.respond(request)

    def options(self, *, fake_sleep: bool = True) -> dict[str, Any]:
        options: dict[str, Any] = {"transport": httpx.MockTransport(self._handle), "clock": lambda: 0}
        return options | ({"sleep": self.sleeps.append} if fake_sleep else {})

    @property
    def calls(self) -> int:
        return len(self.requests)


def serving(payload: dict[str, Any]) -> Server:
    return Server(lambda request: httpx.Response(200, json=payload))


def fixture_page() -> dict[str, Any]:
    return json.loads((FIXTURES / "weiterbildungssuche_page.json").read_text(encoding="utf-8"))


def live_of(payload: dict[str, Any]) -> list[Course]:
    return courses_from_response(copy.deepcopy(payload), LoadReport(source="arbeitsagentur", file="test"))


def write_berufenet_detail(data_dir: Path, beruf_id: int, code: str) -> None:
    """One detail file as `craft data fetch berufenet` writes it (the API answers a list of records)."""
    path = data_dir / "berufenet" / "details" / f"{beruf_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"id": beruf_id, "kurzBezeichnungNeutral": "x", "codenr": code}]))


def catalog_course(source: str, source_id: str, title: str, **fields: Any) -> Course:
    return Course(id=course_id(source, source_id), source=source, source_id=source_id, title=title, **fields)


class TinyKB:
    """What the live tool reads of a knowledge base: occupations, the BA code bridge and the catalog."""

    def __init__(self, catalog: list[Course]) -> None:
        self.occupations = {
            DATA_ANALYST: Concept(
                DATA_ANALYST, "occupation", "data analyst", "Datenanalytiker/Datenanalytikerin", "", ""
            )
        }
        self.ba_codes = {
            DATA_ANALYST: [
                ("B 43104-134", "Data Engineer", "narrowMatch"),
                ("B 91344-127", "Statistiker", "exactMatch"),
                (DATA_SCIENTIST_CODE, "Data Scientist", "narrowMatch"),
            ]
        }
        columns = list(Course.model_fields)
        self.courses = pd.DataFrame.from_records(
            [c.model_dump(mode="json") for c in catalog], columns=columns
        )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        http_retries=3,
        http_rate_per_s=0,
        offline=False,
    )


def tiny_kb(catalog: list[Course] | None = None) -> KnowledgeBase:
    return cast(KnowledgeBase, TinyKB(catalog or []))


# --- occupation → query ---------------------------------------------------------------------------------
def test_query_carries_the_berufenet_ids_of_the_ba_codes(settings: Settings) -> None:
    write_berufenet_detail(settings.data_dir, DATA_SCIENTIST_ID, DATA_SCIENTIST_CODE)
    write_berufenet_detail(settings.data_dir, 58794, "B 43412-100")  # another occupation: not sent
    server = serving(fixture_page())
    result = search_live_courses(tiny_kb(), DATA_ANALYST, settings, client_options=server.options())
    assert server.calls == 1
    params = server.requests[0].url.params
    assert params["ids"] == str(DATA_SCIENTIST_ID) and "sw" not in params
    assert server.requests[0].headers["X-API-Key"] == "infosysbub-wbsuche"
    assert result.status == "ok" and result.notice is None
    assert result.ba_codes == ["B 91344-127", "B 43104-132", "B 43104-134"]  # exact mapping first
    assert result.kldb_codes == ["91344", "43104"]
    assert result.berufenet_ids == [DATA_SCIENTIST_ID] and result.keyword is None
    assert result.query == {"ids": str(DATA_SCIENTIST_ID)}
    assert [c.title for c in result.courses] == ["Python für Datenanalyse", "Scrum Master Grundlagen"]
    assert all(c.source == "arbeitsagentur" and c.language == "de" for c in result.courses)
    assert result.courses[0].id == course_id("arbeitsagentur", "900000001")


def test_without_berufenet_ids_the_search_is_by_german_keyword(settings: Settings) -> None:
    server = serving(fixture_page())
    result = search_live_courses(tiny_kb(), DATA_ANALYST, settings, client_options=server.options())
    params = server.requests[0].url.params
    assert params["sw"] == "Datenanalytiker" and "ids" not in params  # a KldB code is no BERUFENET id
    assert result.keyword == "Datenanalytiker" and result.berufenet_ids == []
    assert result.kldb_codes == ["91344", "43104"] and len(result.courses) == 2


def test_id_search_without_results_falls_back_to_the_keyword(settings: Settings) -> None:
    write_berufenet_detail(settings.data_dir, DATA_SCIENTIST_ID, DATA_SCIENTIST_CODE)
    empty = {"_embedded": {"termine": []}, "page": {"size": 20, "totalElements": 0, "totalPages": 0}}

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=empty if "ids" in request.url.params else fixture_page())

    server = Server(respond)
    result = search_live_courses(tiny_kb(), DATA_ANALYST, settings, client_options=server.options())
    assert [("ids" in r.url.params, "sw" in r.url.params) for r in server.requests] == [
        (True, False),
        (False, True),
    ]
    assert result.keyword == "Datenanalytiker" and len(result.courses) == 2 and result.notice is None


def test_limit_and_page_size(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_courses, "PAGE_SIZE", 1)
    server = serving(fixture_page())  # 2 termine per page; totalPages 2
    result = search_live_courses(tiny_kb(), DATA_ANALYST, settings, limit=1, client_options=server.options())
    assert server.calls == 1 and server.requests[0].url.params["size"] == "1"
    assert len(result.courses) == 1 and result.total == 4


def test_repeated_search_is_answered_from_the_cache(settings: Settings) -> None:
    server = serving(fixture_page())
    first = search_live_courses(tiny_kb(), DATA_ANALYST, settings, client_options=server.options())
    again = search_live_courses(tiny_kb(), DATA_ANALYST, settings, client_options=server.options())
    assert server.calls == 1 and again.requests == 0 and again.courses == first.courses


def test_location_becomes_region_or_place_filter(settings: Settings) -> None:
    assert location_filter("bay") == {"re": ["BAY"]}
    assert location_filter("THÜ") == {"re": ["THÜ"]}
    assert location_filter("Erlangen_11.005_49.595", 25) == {"orte": "Erlangen_11.005_49.595", "uk": "25"}
    assert location_filter(None) == {} and location_filter("  ") == {}
    with pytest.raises(InvalidQuery, match="Place_longitude_latitude"):
        location_filter("Erlangen")
    with pytest.raises(InvalidQuery, match="not offered"):
        location_filter("Erlangen_11.005_49.595", 30)
    server = serving(fixture_page())
    search_live_courses(tiny_kb(), DATA_ANALYST, settings, location="NRW", client_options=server.options())
    assert server.requests[0].url.params["re"] == "NRW"


def test_berufenet_index_is_cached_and_rebuilt_on_change(tmp_path: Path) -> None:
    details = tmp_path / "berufenet" / "details"
    cache = tmp_path / "cache" / "codes.json"
    assert berufenet_ids_by_code(details, cache) == {}
    write_berufenet_detail(tmp_path, 1, "B 43104-132")
    write_berufenet_detail(tmp_path, 2, "B  43104-132")  # spacing normalized
    assert berufenet_ids_by_code(details, cache) == {"B 43104-132": [1, 2]}
    assert cache.is_file()
    write_berufenet_detail(tmp_path, 3, "B 43412-100")
    assert berufenet_ids_by_code(details, cache) == {"B 43104-132": [1, 2], "B 43412-100": [3]}


# --- degradation ----------------------------------------------------------------------------------------
def test_offline_makes_no_request(settings: Settings) -> None:
    server = serving(fixture_page())
    offline = settings.model_copy(update={"offline": True})
    result = search_live_courses(tiny_kb(), DATA_ANALYST, offline, client_options=server.options())
    assert server.calls == 0 and result.requests == 0
    assert result.status == "offline" and result.courses == []
    assert result.notice == (
        "Live search of the Weiterbildungssuche is unavailable (offline mode); "
        "showing the indexed catalog only."
    )
    assert result.ba_codes  # the codes are still reported


def _raise(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        raise error

    return respond


@pytest.mark.parametrize(
    ("respond", "status", "calls", "why"),
    [
        (lambda r: httpx.Response(500, text="Internal Server Error"), "error", 1, "HTTP 500"),
        (lambda r: httpx.Response(503, headers={"Retry-After": "120"}), "error", 2, "HTTP 503"),  # 1 retry
        (_raise(httpx.ConnectTimeout("timed out")), "unavailable", 1, "cannot reach rest.arbeitsagentur.de"),
        (_raise(httpx.ConnectError("no route to host")), "unavailable", 1, "ConnectError"),
        (lambda r: httpx.Response(200, text="<html>maintenance</html>"), "error", 1, "not JSON"),
        (lambda r: httpx.Response(200, json=[{"termine": []}]), "error", 1, "unexpected answer"),
    ],
    ids=["500", "503-retried", "timeout", "no-network", "not-json", "json-list"],
)
def test_server_problems_degrade_with_a_notice(
    settings: Settings, respond: Callable[[httpx.Request], httpx.Response], status: str, calls: int, why: str
) -> None:
    server = Server(respond)
    result = search_live_courses(tiny_kb(), DATA_ANALYST, settings, client_options=server.options())
    assert result.status == status and result.courses == [] and server.calls == calls
    assert result.notice is not None and why in result.notice and "indexed catalog only" in result.notice


def test_live_search_waits_briefly(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone is waiting: one retry, and a server's long Retry-After is cut to MAX_WAIT_S."""
    waits: list[float] = []
    monkeypatch.setattr(live_courses.time, "sleep", waits.append)
    server = Server(lambda r: httpx.Response(503, headers={"Retry-After": "120"}))
    result = search_live_courses(
        tiny_kb(), DATA_ANALYST, settings, client_options=server.options(fake_sleep=False)
    )
    assert server.calls == 2 and waits == [live_courses.MAX_WAIT_S] and result.status == "error"


def test_error_on_a_later_page_keeps_the_courses_received(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_courses, "PAGE_SIZE", 2)

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.params["page"] == "0":
            return httpx.Response(200, json=fixture_page())
        return httpx.Response(500)

    result = search_live_courses(
        tiny_kb(), DATA_ANALYST, settings, limit=4, client_options=Server(respond).options()
    )
    assert result.status == "error" and len(result.courses) == 2
    assert result.notice is not None and "stopped early (HTTP 500)" in result.notice


def test_no_course_found_says_so(settings: Settings) -> None:
    empty = {"_embedded": {"termine": []}, "page": {"size": 20, "totalElements": 0, "totalPages": 0}}
    result = search_live_courses(tiny_kb(), DATA_ANALYST, settings, client_options=serving(empty).options())
    assert result.status == "ok" and result.courses == [] and result.total is None
    assert result.notice is not None and "no current course for Datenanalytiker" in result.notice


def test_unknown_occupation_sends_nothing(settings: Settings) -> None:
    server = serving(fixture_page())
    result = search_live_courses(tiny_kb(), "http://x/nope", settings, client_options=server.options())
    assert result.status == "unknown_occupation" and server.calls == 0 and result.notice


# --- dedup against the catalog --------------------------------------------------------------------------
def test_dedup_follows_the_catalog_merge_rules(settings: Settings) -> None:
    page = fixture_page()
    third = copy.deepcopy(page["_embedded"]["termine"][1])
    third["id"] = 900000003  # another run of the Scrum offer (same title and provider)
    fourth = copy.deepcopy(page["_embedded"]["termine"][1])
    fourth.update(id=900000004, link="https://kurse.example.org/sql/")
    fourth["angebot"] = {
        **fourth["angebot"],
        "titel": "SQL Grundlagen",
        "bildungsanbieter": {"name": "Other"},
    }
    page["_embedded"]["termine"] += [third, fourth]
    catalog = [
        # the same termin: indexed from an earlier response
        catalog_course(
            "arbeitsagentur", "900000001", "Python für Datenanalyse", provider="Beispiel Akademie GmbH"
        ),
        # the Scrum course in another catalog: same title + provider across sources
        catalog_course("edx", "scrum-1", "Scrum Master  Grundlagen", provider="Agil Online Training"),
        # the SQL course's page in another catalog: same URL (www, trailing slash and scheme aside)
        catalog_course("coursera", "sql", "Intro to SQL", url="http://www.kurse.example.org/sql"),
        catalog_course("coursera", "other", "Unrelated", provider="Beispiel Akademie GmbH"),
    ]
    kb = tiny_kb(catalog)
    result = search_live_courses(kb, DATA_ANALYST, settings, client_options=serving(page).options())
    ids = {c.source_id: c.id for c in result.courses}
    assert result.in_catalog == {
        ids["900000001"]: catalog[0].id,
        ids["900000002"]: catalog[1].id,
        ids["900000003"]: catalog[1].id,
        ids["900000004"]: catalog[2].id,
    }
    assert result.new_courses == []
    merged = merge_live(kb.courses, result.courses)
    assert list(merged.id) == list(kb.courses.id)  # nothing shown twice

    # within one source: another run of the same offer is the same course, a shared (generic) URL is not
    same_source = [
        catalog_course("arbeitsagentur", "1", "Scrum Master Grundlagen", provider="Agil Online Training"),
        catalog_course("arbeitsagentur", "2", "Anything", url="https://kurse.example.org/python/erlangen"),
    ]
    live = live_of(fixture_page())
    assert catalog_matches(tiny_kb(same_source).courses, live) == {live[1].id: same_source[0].id}


def test_merge_live_appends_new_courses_in_catalog_columns() -> None:
    merged_away = catalog_course(
        "coursera", "py", "Python", also_in=[course_id("arbeitsagentur", "900000001")]
    )
    kb = tiny_kb([merged_away])
    live = live_of(fixture_page())
    assert catalog_matches(kb.courses, live) == {
        live[0].id: merged_away.id
    }  # via the merged record's also_in
    other_run = live[1].model_copy(update={"id": course_id("arbeitsagentur", "7"), "location": "Köln"})
    merged = merge_live(kb.courses, [*live, live[1], other_run])  # one offer, one row
    assert list(merged.columns) == list(kb.courses.columns)
    assert list(merged.id) == [merged_away.id, live[1].id]
    row = merged.iloc[1]
    assert row.title == "Scrum Master Grundlagen" and row.language == "de" and bool(row.has_description)


def test_occupation_codes_without_mapping_use_the_keyword() -> None:
    kb = tiny_kb()
    kb.ba_codes.clear()
    codes = occupation_codes(kb, DATA_ANALYST, {DATA_SCIENTIST_CODE: [1]})
    assert codes.ba_codes == [] and codes.berufenet_ids == [] and codes.keyword == "Datenanalytiker"


# --- the real knowledge base and the recorded response -------------------------------------------------
def recorded() -> dict[str, Any]:
    path = Path(os.environ.get("CRAFT_DATA_DIR", "data")) / RECORDING
    if not path.is_file():
        pytest.skip(f"needs CRAFT_DATA_DIR with {RECORDING}")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def live_settings(real_settings: Settings, tmp_path: Path) -> Settings:
    """The real store, an empty data dir for the BERUFENET export and a private HTTP cache."""
    return real_settings.model_copy(
        update={"data_dir": tmp_path / "data", "cache_dir": tmp_path / "cache", "http_rate_per_s": 0}
    )


@pytest.mark.data
def test_recorded_response_for_a_real_occupation(live_settings: Settings) -> None:
    from knowledge.store import get_knowledge

    payload = recorded()
    kb = get_knowledge(live_settings)
    assert DATA_SCIENTIST_CODE in {code for code, _, _ in kb.ba_codes[DATA_ANALYST]}
    write_berufenet_detail(live_settings.data_dir, DATA_SCIENTIST_ID, DATA_SCIENTIST_CODE)
    server = serving(payload)
    result = search_live_courses(kb, DATA_ANALYST, live_settings, client_options=server.options())

    params = server.requests[0].url.params
    assert params["ids"] == str(DATA_SCIENTIST_ID) and server.requests[0].url.path == API_PATH
    assert "43104" in result.kldb_codes and DATA_SCIENTIST_CODE in result.ba_codes
    termine = payload["_embedded"]["termine"]
    assert [c.id for c in result.courses] == [course_id("arbeitsagentur", str(t["id"])) for t in termine]
    assert [c.title for c in result.courses] == [" ".join(t["angebot"]["titel"].split()) for t in termine]
    assert result.status == "ok" and result.total == 10_000
    # the recording is part of the indexed catalog: every live course is already there, none is added
    assert set(result.in_catalog) == {c.id for c in result.courses} and result.new_courses == []
    assert len(merge_live(kb.courses, result.courses)) == len(kb.courses)


@pytest.mark.data
def test_real_occupation_without_berufenet_export_searches_its_german_label(live_settings: Settings) -> None:
    from knowledge.store import get_knowledge

    server = serving(recorded())
    result = search_live_courses(
        get_knowledge(live_settings), DATA_ANALYST, live_settings, client_options=server.options()
    )
    assert server.requests[0].url.params["sw"] == "Datenanalytiker"
    assert "ids" not in server.requests[0].url.params and len(result.courses) == 20


@pytest.fixture
def enriched(live_settings: Settings) -> Settings:
    """The course-skill table recommend reads (incremental: cheap when another test built it)."""
    from knowledge.course_skills import default_extractors, enrich_courses
    from knowledge.store import get_knowledge

    kb = get_knowledge(live_settings)
    enrich_courses(live_settings, kb, default_extractors(live_settings, kb), progress=False)
    return live_settings


@pytest.mark.data
def test_recommend_live_offline_is_the_catalog_recommendation(enriched: Settings) -> None:
    from tools.recommend import recommend

    server = serving(recorded())
    offline = enriched.model_copy(update={"offline": True})
    plain = recommend(DATA_ANALYST, settings=offline)
    live = recommend(DATA_ANALYST, settings=offline, live=True, client_options=server.options())
    assert server.calls == 0
    assert live.recommendations == plain.recommendations and len(live.recommendations) == 10
    assert live.notice is not None and "unavailable (offline mode)" in live.notice


@pytest.mark.data
def test_recommend_live_merges_new_courses(enriched: Settings) -> None:
    from knowledge.store import get_knowledge
    from tools.recommend import Recommendation, recommend
    from tools.retrieval.base import Filters

    def run(payload: dict[str, Any]) -> list[Any]:
        return recommend(
            DATA_ANALYST,
            settings=enriched,
            lang="de",
            live=True,
            filters=Filters(sources=["arbeitsagentur"]),  # the Weiterbildungssuche's courses only
            client_options={**serving(payload).options(), "use_cache": False},  # two answers, one query
        ).recommendations

    catalog = set(get_knowledge(enriched).courses.id)
    # next week's runs of the offers the catalog has: the same courses, nothing is shown twice
    runs = recorded()
    for termin in runs["_embedded"]["termine"]:
        termin["id"] += 1
    shown = run(runs)
    assert len(shown) == 10 and {r.course_id for r in shown} <= catalog
    assert len({(r.title, r.source) for r in shown}) == 10

    # new offers: they join the retrievable set and come with the skills they cover
    offers = copy.deepcopy(runs)
    for termin in offers["_embedded"]["termine"]:
        termin["angebot"]["titel"] += " – Kompaktkurs"
    live_ids = {course_id("arbeitsagentur", str(t["id"])) for t in offers["_embedded"]["termine"]}
    shown = run(offers)
    ids = [r.course_id for r in shown]
    assert len(ids) == len(set(ids)) == 10
    assert live_ids & set(ids) and set(ids) <= catalog | live_ids
    assert set(Recommendation.model_fields) == CARD_FIELDS
    assert any(r.covers for r in shown if r.course_id in live_ids)


@pytest.mark.data
def test_cli_live_json_keeps_the_contract_and_reports_offline(
    enriched: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from craft.cli import app

    monkeypatch.setenv("CRAFT_OFFLINE", "1")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["recommend", "--occupation", DATA_ANALYST, "--live", "--json"])
    finally:
        monkeypatch.delenv("CRAFT_OFFLINE")
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 10 and set(rows[0]) == CARD_FIELDS
    assert "unavailable (offline mode)" in result.stderr
