"""Live German courses: the Weiterbildungssuche of the Bundesagentur für Arbeit, queried for the target
occupation and merged with the indexed catalog; offline it degrades to the catalog with a notice.

Occupation → query: the BA mapping in the knowledge base gives the ESCO occupation's BA codes
(``B 43104-132``; the first five digits are the KldB 2010 code). The API's occupation filter ``ids`` takes
*numeric BERUFENET Berufs-IDs*, another id space (a KldB code sent there names an unrelated occupation), so
the codes go through the BERUFENET detail records (``craft data fetch berufenet``) when they are present.
Without them, or when the id search finds nothing, the search is a keyword search (``sw``) for the German
occupation label.

Network problems never reach the caller: offline mode, an unreachable host (``SourceUnavailable``) or an
error answer (``ApiError``) give an empty (or partial) live list, ``status`` and a ``notice`` for the user.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal, get_args

import httpx
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from craft.settings import Settings
from knowledge.ba import BERUFENET_DETAILS, berufenet_ids_by_code, kldb_of
from knowledge.clients.http import ApiError, ParamValue, SourceUnavailable
from knowledge.clients.weiterbildungssuche import (
    MAX_RESULTS,
    SEARCH_PATH,
    Region,
    WbQuery,
    WeiterbildungClient,
)
from knowledge.course_skills import (
    DEFAULT_MIN_CONFIDENCE,
    CourseText,
    PhraseExtractor,
    SkillEvidence,
    SourceExtractor,
    merge_evidence,
)
from knowledge.courses.adapters.arbeitsagentur import courses_from_response
from knowledge.courses.catalog import match_keys, record_keys
from knowledge.courses.schema import Course
from knowledge.report import LoadReport
from knowledge.store import KnowledgeBase
from tools.lookup import InvalidQuery

LiveStatus = Literal["ok", "offline", "unavailable", "error", "unknown_occupation"]

DEFAULT_LIMIT = 40
PAGE_SIZE = 50
MAX_IDS = 20  # BERUFENET ids per query (one comma-separated parameter)
LIVE_RETRIES = 1  # someone is waiting for the answer: one retry, not the bulk fetcher's four
LIVE_TIMEOUT_S = 15.0
MAX_WAIT_S = 5.0  # cap on backoff / Retry-After waits of the live search
LIVE_CACHE_TTL_S = 24 * 3600.0  # course dates change daily; a cached answer is reused for a day
RELATION_ORDER = {"exactMatch": 0, "closeMatch": 1, "narrowMatch": 2, "broadMatch": 3}
REGIONS: frozenset[str] = frozenset(get_args(Region))
RADII_KM = ("25", "50", "100", "150", "200")  # the API's Umkreis values besides 'Bundesweit'
_ORTE = re.compile(r"[^_]+_-?\d+(?:\.\d+)?_-?\d+(?:\.\d+)?")
_UNAVAILABLE = (
    "Live search of the Weiterbildungssuche is unavailable ({why}); showing the indexed catalog only."
)


class LiveResult(BaseModel):
    """What the live search found and how: the codes and query it used, and whether it degraded."""

    model_config = ConfigDict(extra="forbid")

    occupation_uri: str
    status: LiveStatus
    courses: list[Course] = Field(default_factory=list, description="Live courses, in the API's order.")
    in_catalog: dict[str, str] = Field(
        default_factory=dict, description="Live course id -> id of the same course in the indexed catalog."
    )
    ba_codes: list[str] = Field(default_factory=list, description="BA occupation codes of the occupation.")
    kldb_codes: list[str] = Field(default_factory=list, description="KldB 2010 5-digit codes of those.")
    berufenet_ids: list[int] = Field(
        default_factory=list, description="BERUFENET Berufs-IDs the codes map to (the API's 'ids')."
    )
    keyword: str | None = Field(None, description="The 'sw' keyword when the search was by keyword.")
    query: dict[str, ParamValue] = Field(
        default_factory=dict, description="Filters sent (without page/size) in the final query."
    )
    total: int | None = Field(None, description="Courses the API reports for the query (capped at 10,000).")
    requests: int = Field(0, description="HTTP requests sent (cache hits are not requests).")
    notice: str | None = Field(None, description="For the user when the search degraded or found nothing.")

    @property
    def new_courses(self) -> list[Course]:
        """Live courses that the indexed catalog does not have yet."""
        return [c for c in self.courses if c.id not in self.in_catalog]


class OccupationCodes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ba_codes: list[str]
    kldb_codes: list[str]
    berufenet_ids: list[int]
    keyword: str


def german_keyword(label: str) -> str:
    """'Datenanalytiker/Datenanalytikerin' -> 'Datenanalytiker': the first gender form of an ESCO label."""
    return label.split("/")[0].strip() or label.strip()


def occupation_codes(
    kb: KnowledgeBase, occupation_uri: str, berufenet: dict[str, list[int]] | None = None
) -> OccupationCodes:
    """BA codes (closest mapping relation first), their KldB codes, the BERUFENET ids they map to in
    ``berufenet`` (see ``knowledge.ba.berufenet_ids_by_code``) and the German keyword fallback."""
    mapped = sorted(
        kb.ba_codes.get(occupation_uri, []), key=lambda row: (RELATION_ORDER.get(row[2] or "", 9), row[0])
    )
    ba_codes = list(dict.fromkeys(code for code, _, _ in mapped))
    kldb = list(dict.fromkeys(k for k in map(kldb_of, ba_codes) if k))
    ids = list(dict.fromkeys(i for code in ba_codes for i in (berufenet or {}).get(code, [])))
    return OccupationCodes(
        ba_codes=ba_codes,
        kldb_codes=kldb,
        berufenet_ids=ids[:MAX_IDS],
        keyword=german_keyword(kb.occupations[occupation_uri].label("de")),
    )


def location_filter(location: str | None, radius_km: int | None = None) -> dict[str, Any]:
    """``WbQuery`` fields for a place: a region code (``BAY``, ``THÜ``, ``-`` = supra-regional) or the
    API's place form ``Name_lon_lat`` (``Erlangen_11.005_49.595``) with a radius (default 50 km)."""
    if location is None or not location.strip():
        return {}
    text = location.strip()
    region = next((r for r in REGIONS if r.lower() == text.lower()), None)
    if region is not None:
        return {"re": [region]}
    if _ORTE.fullmatch(text):
        radius = str(radius_km or 50)
        if radius not in RADII_KM:
            raise InvalidQuery(f"Radius {radius_km} km is not offered: {', '.join(RADII_KM)} km.")
        return {"orte": text, "uk": radius}
    raise InvalidQuery(
        f"Unknown location {location!r}: use a region code ({', '.join(sorted(REGIONS - {'-'}))}) "
        "or 'Place_longitude_latitude', e.g. 'Erlangen_11.005_49.595'."
    )


def catalog_matches(catalog: pd.DataFrame, courses: Sequence[Course]) -> dict[str, str]:
    """Live course id -> catalog id for the courses the catalog already has: the same id (also a duplicate
    merged into a catalog record), or a ``match_keys`` key (``knowledge.courses.catalog``) of a catalog
    record. Unlike the catalog, which keeps the runs (termine) of one offer apart, another run of an offer
    the catalog has counts as the same course here, so a same-source match by title + provider is one; a
    same-source URL is not (providers link many offers to one generic page)."""
    by_id: dict[str, str] = {}
    by_key: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for cid, source, title, provider, url, also_in in zip(
        catalog.id, catalog.source, catalog.title, catalog.provider, catalog.url, catalog.also_in, strict=True
    ):
        by_id[cid] = cid
        for other in _ids(also_in):
            by_id.setdefault(other, cid)
        for key in record_keys(title, _text(provider), _text(url)):
            by_key.setdefault(key, []).append((cid, source))
    found: dict[str, str] = {}
    for course in courses:
        if course.id in by_id:
            found[course.id] = by_id[course.id]
            continue
        for key in match_keys(course):
            candidates = by_key.get(key, [])
            match = next(
                (cid for cid, source in candidates if source != course.source or key[0] == "title"), None
            )
            if match is not None:
                found[course.id] = match
                break
    return found


def merge_live(catalog: pd.DataFrame, courses: Sequence[Course]) -> pd.DataFrame:
    """The catalog table plus the live courses it does not have, in its columns: one retrievable course set
    (``CourseCorpus(merge_live(kb.courses, live.courses))``). Catalog rows win over their live duplicates,
    so course ids and their enrichment stay valid; of several live runs of one offer (same title +
    provider) the first stays."""
    known = catalog_matches(catalog, courses)
    fresh: list[Course] = []
    seen_ids: set[str] = set()
    seen_offers: set[tuple[str, ...]] = set()
    for course in courses:
        offers = {key for key in match_keys(course) if key[0] == "title"}
        if course.id in known or course.id in seen_ids or offers & seen_offers:
            continue
        fresh.append(course)
        seen_ids.add(course.id)
        seen_offers |= offers
    if not fresh:
        return catalog.reset_index(drop=True)
    rows = pd.DataFrame.from_records([c.model_dump(mode="json") for c in fresh])
    rows = rows.reindex(columns=catalog.columns)
    return pd.concat([catalog, rows], ignore_index=True)


@lru_cache(maxsize=2)
def _phrase_extractor(kb: KnowledgeBase) -> PhraseExtractor:
    return PhraseExtractor.from_kb(kb)


def live_course_skills(
    kb: KnowledgeBase, courses: Sequence[Course], min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> dict[str, set[str]]:
    """course id -> ESCO skills of live courses, by the enrichment's phrase and source extractors (the same
    confidences and threshold as ``load_course_skills``), so live courses get ``covers`` too."""
    if not courses:
        return {}
    frame = pd.DataFrame.from_records([c.model_dump(mode="json") for c in courses])
    source = SourceExtractor(kb.labels, frame, {uri: c.label("en") for uri, c in kb.skills.items()})
    evidence: list[tuple[str, SkillEvidence]] = []
    for extractor in (_phrase_extractor(kb), source):
        for item in (CourseText(c.id, c.title, c.description or "", c.language or "") for c in courses):
            found = extractor.extract(item.course_id, item.title, item.text, item.lang)
            evidence.extend((item.course_id, e) for e in found)
    table = merge_evidence(evidence)
    table = table[table.confidence >= min_confidence]
    out: dict[str, set[str]] = {}
    for cid, uri in zip(table.course_id, table.skill_uri, strict=True):
        out.setdefault(cid, set()).add(uri)
    return out


def search_live_courses(
    kb: KnowledgeBase,
    occupation_uri: str,
    settings: Settings,
    *,
    location: str | None = None,
    radius_km: int | None = None,
    limit: int = DEFAULT_LIMIT,
    client_options: dict[str, Any] | None = None,
) -> LiveResult:
    """Live Weiterbildungssuche courses for an ESCO occupation, normalized to ``Course`` and checked
    against the indexed catalog (``in_catalog``); never raises on network problems.

    ``location``: see ``location_filter`` (an invalid one raises ``InvalidQuery``). ``client_options`` go
    to ``WeiterbildungClient`` (tests inject ``transport``, ``sleep``, ``clock``)."""
    if occupation_uri not in kb.occupations:
        return LiveResult(
            occupation_uri=occupation_uri,
            status="unknown_occupation",
            notice=f"No ESCO occupation {occupation_uri!r}; showing the indexed catalog only.",
        )
    where = location_filter(location, radius_km)
    berufenet = berufenet_ids_by_code(
        settings.data_dir / BERUFENET_DETAILS, settings.cache_dir / "berufenet" / "codes_index.json"
    )
    codes = occupation_codes(kb, occupation_uri, berufenet)
    result = LiveResult(
        occupation_uri=occupation_uri,
        status="ok",
        ba_codes=codes.ba_codes,
        kldb_codes=codes.kldb_codes,
        berufenet_ids=codes.berufenet_ids,
    )
    if settings.offline:
        return result.model_copy(
            update={"status": "offline", "notice": _UNAVAILABLE.format(why="offline mode")}
        )
    queries = [WbQuery(ids=codes.berufenet_ids, **where)] if codes.berufenet_ids else []
    queries.append(WbQuery(sw=codes.keyword, **where))
    live_settings = settings.model_copy(
        update={
            "http_retries": min(settings.http_retries, LIVE_RETRIES),
            "http_timeout_s": min(settings.http_timeout_s, LIVE_TIMEOUT_S),
        }
    )
    options: dict[str, Any] = {
        "cache_ttl_s": LIVE_CACHE_TTL_S,
        "sleep": _capped_sleep,
        **(client_options or {}),
    }
    limit = max(1, limit)
    courses: dict[str, Course] = {}
    update: dict[str, Any] = {}
    client = WeiterbildungClient(live_settings, **options)
    try:
        for query in queries:  # ids first; the keyword when no id maps or the id search finds nothing
            update = {"query": query.to_params(), "keyword": query.sw, "total": None}
            _collect(client, query, limit, courses, update)
            if courses:
                break
    except SourceUnavailable as error:
        update |= _degraded("unavailable", error.reason, len(courses))
    except ApiError as error:
        why = f"HTTP {error.status}" if error.status >= 400 else "the answer was not JSON"
        update |= _degraded("error", why, len(courses))
    except httpx.HTTPError as error:  # anything the client did not translate
        update |= _degraded("unavailable", type(error).__name__, len(courses))
    except (ValidationError, AttributeError) as error:  # JSON, but not the documented page object
        update |= _degraded("error", f"unexpected answer: {type(error).__name__}", len(courses))
    finally:
        client.close()
        update["requests"] = client.requests_sent
    found = list(courses.values())
    update |= {"courses": found, "in_catalog": catalog_matches(kb.courses, found)}
    if not found and "notice" not in update:
        label = kb.occupations[occupation_uri].label("de")
        update["notice"] = (
            f"The Weiterbildungssuche has no current course for {label}; showing the indexed catalog only."
        )
    return result.model_copy(update=update)


def _collect(
    client: WeiterbildungClient, query: WbQuery, limit: int, into: dict[str, Course], update: dict[str, Any]
) -> None:
    """Page through the answer until ``limit`` courses; partial results stay in ``into`` on errors."""
    size = max(1, min(limit, PAGE_SIZE))
    report = LoadReport(source="arbeitsagentur", file=client.url(SEARCH_PATH))
    for _, raw, page in client.iter_pages(query, max_pages=math.ceil(limit / size), size=size):
        update["total"] = min(page.page.total_elements, MAX_RESULTS) if page.page.total_elements else None
        for course in courses_from_response(raw, report):
            if len(into) >= limit:
                return
            into.setdefault(course.id, course)


def _degraded(status: LiveStatus, why: str, kept: int) -> dict[str, Any]:
    if kept:
        notice = (
            f"Live search of the Weiterbildungssuche stopped early ({why}); showing {kept} live courses "
            "and the indexed catalog."
        )
    else:
        notice = _UNAVAILABLE.format(why=why)
    return {"status": status, "notice": notice}


def _capped_sleep(seconds: float) -> None:
    time.sleep(min(seconds, MAX_WAIT_S))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _ids(value: object) -> list[str]:
    """A list column read back from parquet (numpy array, list or missing)."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return []
    return [str(v) for v in value]  # type: ignore[union-attr]
