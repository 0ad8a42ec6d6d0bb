"""BERUFENET REST API (Bundesagentur für Arbeit): the official German occupation lexicon.

Spec: ``berufenet-api.openapi.yaml`` (GET /berufe, GET /berufe/{id}; header X-API-Key). The spec leaves
responses undocumented; the models follow what the live API is known to return (a Spring HATEOAS page
with ``_embedded.berufSucheList`` and ``page``; the detail is a JSON *list* of records) and keep every
other field (``extra="allow"``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings
from knowledge.clients.http import ApiClient, join_multi

PAGE_SIZE = 20  # fixed by the API ("maximal 20 Einträge pro Seite")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class PageInfo(_Open):
    size: int = 0
    total_elements: int = Field(0, alias="totalElements")
    total_pages: int = Field(0, alias="totalPages")
    number: int = 0


class Bkgr(_Open):
    """Berufskundliche Gruppe of a list entry; ``typ`` is a small id/label object."""

    id: int | None = None
    typ: dict[str, Any] | None = None


class BerufKurz(_Open):
    """One entry of the occupation list."""

    id: int
    kurz_bezeichnung_neutral: str | None = Field(None, alias="kurzBezeichnungNeutral")
    bkgr: Bkgr | None = None


class BerufListPage(_Open):
    items: list[BerufKurz] = Field(default_factory=list)
    page: PageInfo = Field(default_factory=PageInfo)
    links: dict[str, Any] = Field(default_factory=dict, alias="_links")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> BerufListPage:
        """Read ``_embedded.<list>``; the key is ``berufSucheList``, any other list key is accepted too."""
        embedded = payload.get("_embedded") or {}
        items = embedded.get("berufSucheList")
        if items is None:
            items = next((v for v in embedded.values() if isinstance(v, list)), [])
        return cls.model_validate(
            {"items": items, "page": payload.get("page") or {}, "_links": payload.get("_links") or {}}
        )

    @property
    def has_next(self) -> bool:
        if self.page.total_pages:
            return self.page.number + 1 < self.page.total_pages
        return "next" in self.links and bool(self.items)


class Infofeld(_Open):
    id: str
    content: str | None = None


class Steckbrief(_Open):
    kurz: str | None = None
    lang: str | None = None


class BerufDetail(_Open):
    """One record of ``GET /berufe/{id}`` (profile text lives in ``steckbrief`` and ``infofelder``)."""

    id: int
    kurz_bezeichnung_neutral: str | None = Field(None, alias="kurzBezeichnungNeutral")
    steckbrief: Steckbrief | None = None
    infofelder: list[Infofeld] = Field(default_factory=list)
    bilder: list[dict[str, Any]] = Field(default_factory=list)

    def infofeld(self, feld_id: str) -> str | None:
        return next((f.content for f in self.infofelder if f.id == feld_id), None)


def detail_records(payload: Any) -> list[dict[str, Any]]:
    """The detail endpoint answers a list (usually one record); tolerate a bare object too."""
    if isinstance(payload, list):
        return [r for r in payload if isinstance(r, dict)]
    return [payload] if isinstance(payload, dict) else []


class BerufenetClient(ApiClient):
    name = "berufenet"
    offline_hint = (
        "Put BERUFENET exports under <data_dir>/berufenet/ (berufe.jsonl, one list entry per line, and "
        "details/<id>.json) or run `craft data fetch berufenet` with network access."
    )

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings.berufenet_url, settings, api_key=settings.berufenet_api_key, **kwargs)

    def search_raw(
        self,
        *,
        page: int = 0,
        suchwoerter: str | None = "*",
        buchstabe: str | None = None,
        berufecluster: str | Sequence[str] | None = None,
        bg: str | int | Sequence[str | int] | None = None,
    ) -> dict[str, Any]:
        """One list page as JSON. ``suchwoerter="*"`` lists everything; ``berufecluster`` e.g. "TC 0201"
        (regulated), ``bg`` Berufsgruppen e.g. ``[100, 102, 105]`` (training occupations)."""
        params = {
            "page": page,
            "suchwoerter": suchwoerter,
            "buchstabe": buchstabe,
            "berufecluster": join_multi(berufecluster),
            "bg": join_multi(bg),
        }
        return self.get_json("berufe", params)

    def search(
        self,
        *,
        page: int = 0,
        suchwoerter: str | None = "*",
        buchstabe: str | None = None,
        berufecluster: str | Sequence[str] | None = None,
        bg: str | int | Sequence[str | int] | None = None,
    ) -> BerufListPage:
        payload = self.search_raw(
            page=page, suchwoerter=suchwoerter, buchstabe=buchstabe, berufecluster=berufecluster, bg=bg
        )
        return BerufListPage.from_payload(payload)

    def iter_pages(
        self,
        *,
        start_page: int = 0,
        max_pages: int | None = None,
        suchwoerter: str | None = "*",
        buchstabe: str | None = None,
        berufecluster: str | Sequence[str] | None = None,
        bg: str | int | Sequence[str | int] | None = None,
    ) -> Iterator[tuple[int, dict[str, Any], BerufListPage]]:
        """Yield ``(page_number, raw_payload, parsed_page)`` until the last page; the first parsed page
        carries ``page.total_pages`` for a progress bar."""
        number = start_page
        seen = 0
        while max_pages is None or seen < max_pages:
            raw = self.search_raw(
                page=number, suchwoerter=suchwoerter, buchstabe=buchstabe, berufecluster=berufecluster, bg=bg
            )
            parsed = BerufListPage.from_payload(raw)
            yield number, raw, parsed
            seen += 1
            if not parsed.items or not parsed.has_next:
                return
            number += 1

    def list_all(
        self,
        *,
        suchwoerter: str | None = "*",
        buchstabe: str | None = None,
        berufecluster: str | Sequence[str] | None = None,
        bg: str | int | Sequence[str | int] | None = None,
    ) -> Iterator[BerufKurz]:
        """Every matching list entry across all pages."""
        for _, _, parsed in self.iter_pages(
            suchwoerter=suchwoerter, buchstabe=buchstabe, berufecluster=berufecluster, bg=bg
        ):
            yield from parsed.items

    def get_raw(self, beruf_id: int | str) -> Any:
        return self.get_json(f"berufe/{beruf_id}")

    def get(self, beruf_id: int | str) -> list[BerufDetail]:
        """Detail records for one Berufs-ID (the real path is ``/berufe/{id}``; the spec drops the slash)."""
        return [BerufDetail.model_validate(r) for r in detail_records(self.get_raw(beruf_id))]
