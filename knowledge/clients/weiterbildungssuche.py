"""Weiterbildungssuche API (Bundesagentur für Arbeit): Germany's large further-training catalog.

Spec: ``weiterbildungssuche-api.openapi.yaml`` (GET /pc/v2/bildungsangebot and /pc/v1/facetten, header
X-API-Key). Every documented query parameter is a typed field of :class:`WbQuery`. Responses follow the
recorded sample: ``_embedded.termine`` (one entry per course date, the course under ``angebot``), a
``page`` block, ``_links`` and ``aggregations``. ``page`` is 0-based and ``size`` (not in the spec, but in
the API's own ``_links``) sets the page size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from craft.settings import Settings
from knowledge.clients.http import ApiClient, ParamValue
from knowledge.courses.adapters.arbeitsagentur import courses_from_response
from knowledge.courses.schema import Course
from knowledge.report import LoadReport

SEARCH_PATH = "pc/v2/bildungsangebot"
FACETS_PATH = "pc/v1/facetten"
MAX_RESULTS = 10_000  # the API stops at totalElements=10000 whatever the query

Region = Literal[
    "BAW", "BAY", "BER", "BRA", "BRE", "HAM", "HES", "MBV", "NDS", "NRW", "RPF", "SAA", "SAC", "SAN", "SLH",
    "THÜ", "-", "iGB", "iP", "iCH", "iA", "iE",
]  # fmt: skip
Unterrichtsform = Literal[101, 102, 103, 104, 105, 201, 202, 203, 204, 206, 301, 302, 303, 304, 401, 402, 403]


class WbQuery(BaseModel):
    """The search filters of the Weiterbildungssuche (all optional; lists become comma-separated)."""

    model_config = ConfigDict(extra="forbid")

    sw: str | None = Field(None, description="Suchwort (search word).")
    ssw: list[str] | None = Field(
        None, description="Sternchen-Suchworte: incomplete words, e.g. 'Teilquali'."
    )
    ids: list[int] | None = Field(None, description="BERUFENET Berufs-IDs, e.g. 6133.")
    orte: str | None = Field(None, description="Place with coordinates: 'Erlangen_11.005_49.595'.")
    uk: Literal["Bundesweit", "25", "50", "100", "150", "200"] | None = Field(
        None, description="Umkreis (km)."
    )
    re: list[Region] | None = Field(None, description="Regions (Bundesländer / countries).")
    bt: Literal[0, 1, 2, 3, 4, 5] | None = Field(None, description="Beginntermin: 0 regular start … 5 later.")
    uz: list[Literal[1, 2]] | None = Field(None, description="Unterrichtszeit: 1 Vollzeit, 2 Teilzeit.")
    dauer: list[Literal[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]] | None = Field(None, description="Duration classes.")
    uf: list[Unterrichtsform] | None = Field(
        None, description="Unterrichtsform: 101 Präsenz … 403 Fernunterricht."
    )
    ban: int | None = Field(None, description="Bildungsanbieter id.")
    it: list[Literal["RC", "RD"]] | None = Field(None, description="Integrationstyp (Reha).")
    bg: bool | None = Field(None, description="Only offers eligible for a Bildungsgutschein.")
    ortsunabhaengig: bool | None = Field(
        None, description="Show (true) or hide (false) location-free offers."
    )
    sort: Literal["std", "ta", "tz"] | None = Field(None, description="std random, ta/tz title A–Z/Z–A.")
    sys: Literal["C", "D", "CD"] | None = Field(None, description="Systematik: C, D, or CD.")

    @field_validator("ssw", "ids", "re", "uz", "dauer", "uf", "it", mode="before")
    @classmethod
    def _listify(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, tuple | set | list):
            value = list(value)
        else:
            value = [value]
        if info.field_name == "re":
            # The spec lists Thüringen URL-encoded ("TH%C3%9C"); httpx encodes again, so keep it decoded.
            value = [unquote(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("uk", mode="before")
    @classmethod
    def _uk_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    def to_params(self) -> dict[str, ParamValue]:
        params: dict[str, ParamValue] = {}
        for name, value in self.model_dump(exclude_none=True).items():
            params[name] = ",".join(str(v) for v in value) if isinstance(value, list) else value
        return params

    def slug(self) -> str:
        """Short file-name-safe label of the query (used for the fetched page files)."""
        parts = [f"{k}-{v}" if k != "sw" else str(v) for k, v in self.to_params().items()]
        text = "_".join(parts) or "alle"
        safe = "".join(c if c.isalnum() or c in "-" else "_" for c in text.lower())
        return "_".join(p for p in safe.split("_") if p)[:80] or "alle"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WbPageInfo(_Open):
    size: int = 0
    total_elements: int = Field(0, alias="totalElements")
    total_pages: int = Field(0, alias="totalPages")
    number: int = 0


class WbAngebot(_Open):
    id: int | None = None
    titel: str | None = None
    inhalt: str | None = None


class WbTermin(_Open):
    """One course date; the course itself is ``angebot``."""

    id: int | None = None
    angebot: WbAngebot | None = None


class WbPage(_Open):
    termine: list[WbTermin] = Field(default_factory=list)
    page: WbPageInfo = Field(default_factory=WbPageInfo)
    links: dict[str, Any] = Field(default_factory=dict, alias="_links")
    aggregations: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> WbPage:
        embedded = payload.get("_embedded") or {}
        return cls.model_validate(
            {
                "termine": embedded.get("termine") or [],
                "page": payload.get("page") or {},
                "_links": payload.get("_links") or {},
                "aggregations": payload.get("aggregations") or {},
            }
        )

    @property
    def has_next(self) -> bool:
        if self.page.total_pages:
            return self.page.number + 1 < self.page.total_pages
        return "next" in self.links and bool(self.termine)


class WeiterbildungClient(ApiClient):
    name = "weiterbildungssuche"
    offline_hint = (
        "Put saved Weiterbildungssuche responses (JSON pages as returned by /pc/v2/bildungsangebot) under "
        "<data_dir>/courses/ as weiterbildungssuche_<query>_p0000.json, or run "
        "`craft data fetch weiterbildung` with network access."
    )

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            settings.weiterbildung_url, settings, api_key=settings.weiterbildung_api_key, **kwargs
        )

    def search_raw(
        self, query: WbQuery | None = None, *, page: int = 0, size: int | None = None
    ) -> dict[str, Any]:
        params = {**(query or WbQuery()).to_params(), "page": page, "size": size}
        return self.get_json(SEARCH_PATH, params)

    def search(self, query: WbQuery | None = None, *, page: int = 0, size: int | None = None) -> WbPage:
        return WbPage.from_payload(self.search_raw(query, page=page, size=size))

    def facets(self, query: WbQuery | None = None) -> dict[str, Any]:
        """Counts per filter value (``/pc/v1/facetten``) for the same filters."""
        return self.get_json(FACETS_PATH, (query or WbQuery()).to_params())

    def iter_pages(
        self,
        query: WbQuery | None = None,
        *,
        start_page: int = 0,
        max_pages: int | None = None,
        size: int | None = None,
    ) -> Iterator[tuple[int, dict[str, Any], WbPage]]:
        """Yield ``(page_number, raw_payload, parsed_page)`` until the last page (or ``max_pages``)."""
        number = start_page
        seen = 0
        while max_pages is None or seen < max_pages:
            raw = self.search_raw(query, page=number, size=size)
            parsed = WbPage.from_payload(raw)
            yield number, raw, parsed
            seen += 1
            if not parsed.termine or not parsed.has_next:
                return
            number += 1

    def iter_courses(
        self,
        query: WbQuery | None = None,
        *,
        max_pages: int | None = None,
        size: int | None = None,
        report: LoadReport | None = None,
    ) -> Iterator[Course]:
        """Courses normalized by the arbeitsagentur adapter, page by page."""
        report = report or LoadReport(source="arbeitsagentur", file=self.url(SEARCH_PATH))
        for _, raw, _ in self.iter_pages(query, max_pages=max_pages, size=size):
            yield from courses_from_response(raw, report)
