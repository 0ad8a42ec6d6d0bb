"""ESCO web-service API client and a writer for the official ESCO CSV download layout.

The API (https://ec.europa.eu/esco/api) answers HAL JSON: ``/search`` gives ``total`` and
``_embedded.results`` (full resources with ``full=true``), ``/resource/occupation|skill`` one concept whose
multilingual fields are ``{lang: value}`` maps and whose relations sit in ``_links`` (``hasEssentialSkill``,
``hasOptionalSkill``, ``broaderIscoGroup``, ``hasSkillType``, ``hasReuseLevel``, ``isInScheme``...).
Downloads are written with the exact column names of the official CSVs so one loader reads both.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings
from knowledge.clients.http import ApiClient

ESCO_DOWNLOAD_PAGE = "https://esco.ec.europa.eu/en/use-esco/download"
DEFAULT_VERSION = "1.2.0"

OCCUPATION_COLUMNS = [
    "conceptType", "conceptUri", "iscoGroup", "preferredLabel", "altLabels", "hiddenLabels", "status",
    "modifiedDate", "regulatedProfessionNote", "scopeNote", "definition", "inScheme", "description", "code",
]  # fmt: skip
SKILL_COLUMNS = [
    "conceptType", "conceptUri", "skillType", "reuseLevel", "preferredLabel", "altLabels", "hiddenLabels",
    "status", "modifiedDate", "scopeNote", "definition", "inScheme", "description",
]  # fmt: skip
RELATION_COLUMNS = ["occupationUri", "relationType", "skillType", "skillUri"]

# skill-type URIs → the values the official CSVs use
SKILL_TYPES = {"skill": "skill/competence", "knowledge": "knowledge"}
_UUID_TAIL = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

ConceptType = Literal["occupation", "skill"]


def version_tag(version: str) -> str:
    """'1.2.0' or 'v1.2.0' → 'v1.2.0' (the API's ``selectedVersion`` form)."""
    return version if version.startswith("v") else f"v{version}"


def esco_dir_name(version: str, lang: str) -> str:
    return f"{version_tag(version)}_{lang}"


def file_names(version: str, lang: str) -> dict[str, str]:
    """Official file names: v1.1.x ships ``occupationSkillRelations.csv`` unsuffixed, v1.2+ adds
    ``_<lang>`` (compare the v1.1.1_en and de_v1.2.0 downloads)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]] + [0, 0]
    suffixed = (parts[0], parts[1]) >= (1, 2)
    relations = f"occupationSkillRelations_{lang}.csv" if suffixed else "occupationSkillRelations.csv"
    return {"occupations": f"occupations_{lang}.csv", "skills": f"skills_{lang}.csv", "relations": relations}


class EscoSearchPage(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    total: int = 0
    offset: int | None = None
    limit: int | None = None
    results: list[dict[str, Any]] = Field(default_factory=list)
    links: dict[str, Any] = Field(default_factory=dict, alias="_links")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> EscoSearchPage:
        embedded = payload.get("_embedded") or {}
        return cls.model_validate(
            {
                "total": payload.get("total") or 0,
                "offset": payload.get("offset"),
                "limit": payload.get("limit"),
                "results": embedded.get("results") or [],
                "_links": payload.get("_links") or {},
            }
        )


class EscoClient(ApiClient):
    """``version`` pins ``selectedVersion`` (the API otherwise serves its default release)."""

    name = "esco"

    def __init__(self, settings: Settings, *, version: str | None = DEFAULT_VERSION, **kwargs: Any) -> None:
        super().__init__(settings.esco_api_url, settings, **kwargs)
        self.version = version
        self.offline_hint = download_hint(settings, version or DEFAULT_VERSION, "en")

    def _versioned(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.version:
            params["selectedVersion"] = version_tag(self.version)
        return params

    def search_raw(
        self,
        *,
        type: ConceptType | None = None,
        text: str | None = None,
        language: str = "en",
        offset: int = 0,
        limit: int = 100,
        full: bool = True,
        is_in_scheme: str | None = None,
        view_obsolete: bool | None = None,
    ) -> dict[str, Any]:
        params = {
            "type": type,
            "text": text,
            "language": language,
            "offset": offset,
            "limit": limit,
            "full": full,
            "isInScheme": is_in_scheme,
            "viewObsolete": view_obsolete,
        }
        return self.get_json("search", self._versioned(params))

    def search(
        self,
        *,
        type: ConceptType | None = None,
        text: str | None = None,
        language: str = "en",
        offset: int = 0,
        limit: int = 100,
        full: bool = True,
        is_in_scheme: str | None = None,
        view_obsolete: bool | None = None,
    ) -> EscoSearchPage:
        payload = self.search_raw(
            type=type,
            text=text,
            language=language,
            offset=offset,
            limit=limit,
            full=full,
            is_in_scheme=is_in_scheme,
            view_obsolete=view_obsolete,
        )
        return EscoSearchPage.from_payload(payload)

    def iter_pages(
        self,
        type: ConceptType,
        *,
        language: str = "en",
        limit: int = 100,
        start_page: int = 0,
        max_pages: int | None = None,
    ) -> Iterator[tuple[int, EscoSearchPage]]:
        """Walk ``/search`` page by page; ``offset`` is the page index (the live API counts pages of
        ``limit``, not records). Stops at an empty page or once ``total`` is covered."""
        number = start_page
        seen = 0
        while max_pages is None or seen < max_pages:
            page = self.search(type=type, language=language, offset=number, limit=limit, full=True)
            yield number, page
            seen += 1
            if not page.results or (number + 1) * limit >= page.total:
                return
            number += 1

    def resource(self, kind: ConceptType, uri: str, language: str = "en") -> dict[str, Any]:
        return self.get_json(f"resource/{kind}", self._versioned({"uri": uri, "language": language}))

    def occupation(self, uri: str, language: str = "en") -> dict[str, Any]:
        return self.resource("occupation", uri, language)

    def skill(self, uri: str, language: str = "en") -> dict[str, Any]:
        return self.resource("skill", uri, language)


def download_hint(settings: Settings, version: str, lang: str) -> str:
    target = settings.data_dir / "esco" / esco_dir_name(version, lang)
    names = file_names(version, lang)
    return (
        f"Download the ESCO classification {version_tag(version)} as CSV ({lang}) from "
        f"{ESCO_DOWNLOAD_PAGE} and unpack {names['occupations']}, {names['skills']} and "
        f"{names['relations']} into {target}/ (or set CRAFT_ESCO_DIR to an existing download)."
    )


# --- HAL resource → official CSV row ------------------------------------------------------------
def _lang_value(value: Any, lang: str) -> Any:
    if isinstance(value, dict) and value and all(isinstance(k, str) and len(k) <= 6 for k in value):
        return value.get(lang)
    return value


def lang_text(value: Any, lang: str) -> str:
    """Text of a multilingual field: plain string, ``{lang: str}`` or ``{lang: {"literal": str}}``."""
    value = _lang_value(value, lang)
    if isinstance(value, dict):
        value = value.get("literal")
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value)
    return str(value).strip() if value else ""


def lang_list(value: Any, lang: str) -> list[str]:
    """Labels of a multilingual list field: ``{lang: [str]}`` or ``{lang: [{"label": str}]}``."""
    value = _lang_value(value, lang)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    labels = [item.get("label") if isinstance(item, dict) else item for item in items]
    return [str(label).strip() for label in labels if label and str(label).strip()]


def links(resource: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    """Link objects of ``_links[relation]``; falls back to a top-level list of URIs (``full=false``)."""
    value = (resource.get("_links") or {}).get(relation)
    if value is None:
        value = resource.get(relation)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, dict) else {"uri": str(item)} for item in items]


def link_uris(resource: dict[str, Any], relation: str) -> list[str]:
    return [u for u in (item.get("uri") or item.get("href") for item in links(resource, relation)) if u]


def _tail(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1] if uri else ""


def skill_type_label(uri: str | None) -> str:
    tail = _tail(uri or "")
    return SKILL_TYPES.get(tail, tail)


def is_occupation(resource: dict[str, Any]) -> bool:
    uri = resource.get("uri") or ""
    return "/esco/occupation/" in uri and bool(_UUID_TAIL.search(uri))


def is_skill(resource: dict[str, Any]) -> bool:
    """Skill concepts only: skill groups (``skill/S1.2``) are left out, as in skills_<lang>.csv."""
    uri = resource.get("uri") or ""
    return "/esco/skill/" in uri and bool(_UUID_TAIL.search(uri))


def _common(resource: dict[str, Any], lang: str) -> dict[str, str]:
    return {
        "conceptUri": resource.get("uri") or "",
        "preferredLabel": lang_text(resource.get("preferredLabel"), lang) or str(resource.get("title") or ""),
        "altLabels": "\n".join(
            lang_list(resource.get("alternativeLabel") or resource.get("alternativeTerms"), lang)
        ),
        "hiddenLabels": "\n".join(lang_list(resource.get("hiddenLabel"), lang)),
        "status": str(resource.get("status") or ""),
        "modifiedDate": str(resource.get("modifiedDate") or ""),
        "scopeNote": lang_text(resource.get("scopeNote"), lang),
        "definition": lang_text(resource.get("definition"), lang),
        "inScheme": ",\n".join(link_uris(resource, "isInScheme")),
        "description": lang_text(resource.get("description"), lang),
    }


def occupation_row(resource: dict[str, Any], lang: str) -> dict[str, str]:
    code = str(resource.get("code") or "")
    isco = next((str(i["code"]) for i in links(resource, "broaderIscoGroup") if i.get("code")), "")
    if not isco:
        isco = next((_tail(u).lstrip("C") for u in link_uris(resource, "broaderIscoGroup")), "")
    regulated = link_uris(resource, "regulatedProfessionNote") or [
        lang_text(resource.get("regulatedProfessionNote"), lang)
    ]
    row = {
        **_common(resource, lang),
        "conceptType": "Occupation",
        "iscoGroup": isco or code.split(".")[0],
        "regulatedProfessionNote": regulated[0] if regulated else "",
        "code": code,
    }
    return {c: row.get(c, "") for c in OCCUPATION_COLUMNS}


def skill_row(resource: dict[str, Any], lang: str) -> dict[str, str]:
    types = link_uris(resource, "hasSkillType")
    levels = link_uris(resource, "hasReuseLevel")
    row = {
        **_common(resource, lang),
        "conceptType": "KnowledgeSkillCompetence",
        "skillType": skill_type_label(types[0]) if types else "",
        "reuseLevel": _tail(levels[0]) if levels else "",
    }
    return {c: row.get(c, "") for c in SKILL_COLUMNS}


def relation_rows(resource: dict[str, Any]) -> list[dict[str, str]]:
    """Essential/optional skill links of one occupation (skills and knowledge alike)."""
    rows = []
    occupation = resource.get("uri") or ""
    for relation, kind in (
        ("hasEssentialSkill", "essential"),
        ("hasEssentialKnowledge", "essential"),
        ("hasOptionalSkill", "optional"),
        ("hasOptionalKnowledge", "optional"),
    ):
        for item in links(resource, relation):
            uri = item.get("uri") or ""
            if uri:
                skill_type = skill_type_label(item.get("skillType")) if item.get("skillType") else ""
                rows.append(
                    {
                        "occupationUri": occupation,
                        "relationType": kind,
                        "skillType": skill_type,
                        "skillUri": uri,
                    }
                )
    return rows


# --- writing ---------------------------------------------------------------------------------
def _write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, str]]) -> int:
    """Quoted like the official files (minimal quoting, CRLF records, newlines inside fields)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    tmp.replace(path)
    return count


def write_esco_csv(
    directory: Path,
    *,
    version: str,
    lang: str,
    occupations: Iterable[dict[str, str]],
    skills: Iterable[dict[str, str]],
    relations: Iterable[dict[str, str]],
) -> dict[str, tuple[Path, int]]:
    """Write the three core files in the official layout; returns ``{kind: (path, rows)}``.

    Rows are de-duplicated by URI (and relation triple); a relation whose link did not say the skill type
    gets it from the skills table.
    """
    names = file_names(version, lang)
    occ = {r["conceptUri"]: r for r in occupations if r.get("conceptUri")}
    skl = {r["conceptUri"]: r for r in skills if r.get("conceptUri")}
    rel: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in relations:
        key = (r["occupationUri"], r["relationType"], r["skillUri"])
        if not r.get("skillType") and r["skillUri"] in skl:
            r = {**r, "skillType": skl[r["skillUri"]]["skillType"]}
        rel.setdefault(key, r)
    out = {}
    for kind, columns, rows in (
        ("occupations", OCCUPATION_COLUMNS, occ.values()),
        ("skills", SKILL_COLUMNS, skl.values()),
        ("relations", RELATION_COLUMNS, rel.values()),
    ):
        path = directory / names[kind]
        out[kind] = (path, _write_csv(path, columns, rows))
    return out
