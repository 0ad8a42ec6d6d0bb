"""WeiterbildungClient: typed query parameters, paging, normalization to Course."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from knowledge.clients.weiterbildungssuche import WbQuery, WeiterbildungClient
from knowledge.courses.schema import Course
from knowledge.report import LoadReport


def paged(fixture_json, pages: int = 2):
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/facetten"):
            return httpx.Response(200, json={"UNTERRICHTSZEIT": {"1": 5}})
        number = int(request.url.params.get("page", "0"))
        payload = fixture_json("weiterbildungssuche_page.json")
        for i, termin in enumerate(payload["_embedded"]["termine"]):
            termin["id"] = 100 * (number + 1) + i
        payload["page"].update(number=number, totalPages=pages, totalElements=2 * pages)
        return httpx.Response(200, json=payload)

    return handle


def test_query_parameters_follow_the_spec():
    query = WbQuery(
        sw="Python",
        ssw="Teilquali,Daten",
        ids=6133,
        orte="Erlangen_11.005_49.595",
        uk=50,
        re=["TH%C3%9C", "BAW"],
        bt=0,
        uz=[1, 2],
        dauer=(1, 2, 3),
        uf=[101, 202],
        ban=22210,
        it="RC",
        bg=True,
        ortsunabhaengig=False,
        sort="ta",
        sys="C",
    )
    assert query.to_params() == {
        "sw": "Python",
        "ssw": "Teilquali,Daten",
        "ids": "6133",
        "orte": "Erlangen_11.005_49.595",
        "uk": "50",
        "re": "THÜ,BAW",
        "bt": 0,
        "uz": "1,2",
        "dauer": "1,2,3",
        "uf": "101,202",
        "ban": 22210,
        "it": "RC",
        "bg": True,
        "ortsunabhaengig": False,
        "sort": "ta",
        "sys": "C",
    }
    assert query.slug().startswith("python_")


@pytest.mark.parametrize("bad", [{"uk": 30}, {"uf": [999]}, {"sys": "X"}, {"suchwort": "x"}, {"re": ["XX"]}])
def test_query_rejects_values_outside_the_spec(bad):
    with pytest.raises(ValidationError):
        WbQuery(**bad)


def test_search_request_shape(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(paged(fixture_json))
    client = WeiterbildungClient(make_settings(), **client_kwargs(rec))
    page = client.search(WbQuery(sw="Python", re=["THÜ"], bg=True), page=0, size=20)
    request = rec.requests[0]
    assert request.url.path == "/infosysbub/wbsuche/pc/v2/bildungsangebot"
    assert request.headers["X-API-Key"] == "infosysbub-wbsuche"
    assert b"re=TH%C3%9C" in request.url.query
    assert request.url.params["bg"] == "true" and request.url.params["size"] == "20"
    assert page.page.total_pages == 2 and page.has_next
    assert page.termine[0].angebot is not None and page.termine[0].angebot.titel == "Python für Datenanalyse"


def test_iter_courses_pages_and_normalizes(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(paged(fixture_json, pages=3))
    client = WeiterbildungClient(make_settings(), **client_kwargs(rec))
    report = LoadReport(source="arbeitsagentur", file="api")
    courses = list(client.iter_courses(WbQuery(sw="Python"), report=report))
    assert [r.url.params["page"] for r in rec.requests] == ["0", "1", "2"]
    assert len(courses) == 6 and all(isinstance(c, Course) for c in courses)
    assert courses[0].title == "Python für Datenanalyse" and courses[0].source == "arbeitsagentur"
    assert report.rows == 6


def test_iter_pages_respects_max_pages(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(paged(fixture_json, pages=5))
    client = WeiterbildungClient(make_settings(), **client_kwargs(rec))
    assert [n for n, _, _ in client.iter_pages(max_pages=2)] == [0, 1]


def test_facets(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(paged(fixture_json))
    facets = WeiterbildungClient(make_settings(), **client_kwargs(rec)).facets(WbQuery(sw="Pflege"))
    assert facets == {"UNTERRICHTSZEIT": {"1": 5}}
    assert rec.requests[0].url.path == "/infosysbub/wbsuche/pc/v1/facetten"


@pytest.mark.data
def test_real_recorded_response_through_the_client(make_settings, client_kwargs, recorder):
    data_dir = os.environ.get("CRAFT_DATA_DIR")
    path = Path(data_dir or ".") / "courses" / "arbeitsagentur_weiterbildungssuche_sample_2023.json"
    if not data_dir or not path.exists():
        pytest.skip("needs CRAFT_DATA_DIR with courses/arbeitsagentur_weiterbildungssuche_sample_2023.json")
    recorded = json.loads(path.read_text(encoding="utf-8"))
    rec = recorder(lambda request: httpx.Response(200, json=recorded))
    client = WeiterbildungClient(make_settings(), **client_kwargs(rec))
    page = client.search(WbQuery(sw="Informatik"))
    assert page.page.total_pages == 500 and page.page.total_elements == 10_000
    assert len(page.termine) == 20 and all(t.angebot and t.angebot.titel for t in page.termine)
    assert "ANBIETER" in page.aggregations
    report = LoadReport(source="arbeitsagentur", file=str(path))
    courses = list(client.iter_courses(WbQuery(sw="Informatik"), max_pages=1, report=report))
    assert report.rows == 20
    assert len(courses) == report.kept > 0
    assert all(c.language == "de" and c.title for c in courses)
