"""BerufenetClient against a MockTransport shaped like the live API."""

from __future__ import annotations

import httpx
import pytest

from knowledge.clients.berufenet import BerufenetClient, BerufListPage
from knowledge.clients.http import ApiError


def list_handler(fixture_json, pages: int = 2):
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/berufe"):
            number = int(request.url.params.get("page", "0"))
            payload = fixture_json("berufenet_list_page.json")
            for i, item in enumerate(payload["_embedded"]["berufSucheList"]):
                item["id"] = 1000 * (number + 1) + i
            payload["page"].update(number=number, totalPages=pages, totalElements=2 * pages)
            if number == pages - 1:
                payload["_links"].pop("next")
            return httpx.Response(200, json=payload)
        beruf_id = int(request.url.path.rsplit("/", 1)[-1])
        if beruf_id == 404:
            return httpx.Response(404, json={"message": "not found"})
        detail = fixture_json("berufenet_detail.json")
        detail[0]["id"] = beruf_id
        return httpx.Response(200, json=detail)

    return handle


def test_list_all_pages_through_every_page(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(list_handler(fixture_json, pages=3))
    client = BerufenetClient(make_settings(), **client_kwargs(rec))
    entries = list(client.list_all(bg=[100, 102, 105], berufecluster="TC 0201"))
    assert [e.id for e in entries] == [1000, 1001, 2000, 2001, 3000, 3001]
    assert entries[1].kurz_bezeichnung_neutral == "Ethical Hacker"
    assert [r.url.params["page"] for r in rec.requests] == ["0", "1", "2"]
    first = rec.requests[0]
    assert first.url.host == "rest.arbeitsagentur.de"
    assert first.url.path == "/infosysbub/bnet/pc/v1/berufe"
    assert first.headers["X-API-Key"] == "infosysbub-berufenet"
    assert first.url.params["suchwoerter"] == "*"
    assert first.url.params["bg"] == "100,102,105"
    assert first.url.params["berufecluster"] == "TC 0201"


def test_search_parses_page_model(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(list_handler(fixture_json))
    page = BerufenetClient(make_settings(), **client_kwargs(rec)).search(buchstabe="f", suchwoerter=None)
    assert isinstance(page, BerufListPage)
    assert page.page.total_pages == 2 and page.has_next
    assert page.items[0].bkgr is not None and page.items[0].bkgr.id == 1000
    assert rec.requests[0].url.params["buchstabe"] == "f"
    assert "suchwoerter" not in rec.requests[0].url.params


def test_unknown_list_key_is_read_defensively():
    page = BerufListPage.from_payload({"_embedded": {"andereListe": [{"id": 1}]}, "page": {"totalPages": 1}})
    assert [i.id for i in page.items] == [1] and not page.has_next


def test_get_detail_uses_slash_path(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(list_handler(fixture_json))
    records = BerufenetClient(make_settings(), **client_kwargs(rec)).get(58794)
    assert rec.requests[0].url.path == "/infosysbub/bnet/pc/v1/berufe/58794"
    assert len(records) == 1
    detail = records[0]
    assert detail.id == 58794
    assert detail.steckbrief is not None and "Software" in (detail.steckbrief.kurz or "")
    assert detail.infofeld("b11-0") is not None
    assert detail.model_extra == {"codenr": "B 43104-100"}


def test_get_unknown_id_raises_without_retry(make_settings, client_kwargs, recorder, fixture_json):
    rec = recorder(list_handler(fixture_json))
    with pytest.raises(ApiError, match="HTTP 404"):
        BerufenetClient(make_settings(), **client_kwargs(rec)).get(404)
    assert rec.calls == 1
