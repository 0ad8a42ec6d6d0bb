"""ESCO occupations: search by job title (EN/DE, typos, BA titles) and one occupation with its skills.
Public, rate limited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from channels.http.deps import RateLimited
from channels.http.errors import ApiError, responses
from channels.http.offload import offload
from channels.http.schemas import Lang, OccupationMatch, OccupationResults
from tools.lookup import Occupation, find_occupations, get_occupation

router = APIRouter(prefix="/v1/occupations", tags=["occupations"], dependencies=[RateLimited])

ESCO_OCCUPATION = "http://data.europa.eu/esco/occupation/"


@router.get(
    "/search",
    response_model=OccupationResults,
    responses=responses(422, 429, 503),
    summary="Occupations matching a job title",
)
async def search_occupations(
    q: Annotated[str, Query(min_length=1, max_length=200, description="A job title, EN or DE.")],
    lang: Annotated[Lang, Query(description="Language of the labels returned.")] = "en",
    k: Annotated[int, Query(ge=1, le=20)] = 5,
) -> OccupationResults:
    found = await offload(find_occupations, q, lang, k)
    return OccupationResults(results=[OccupationMatch(**c.model_dump()) for c in found])


@router.get(
    "/{uri:path}",
    response_model=Occupation,
    responses=responses(404, 422, 429, 503),
    summary="One occupation with its essential and optional skills",
)
async def occupation(uri: str, lang: Annotated[Lang, Query()] = "en") -> Occupation:
    """``uri``: the ESCO URI (percent-encoded or not) or just its id (the last path segment)."""
    full = uri if uri.startswith(("http://", "https://")) else ESCO_OCCUPATION + uri
    found = await offload(get_occupation, full, lang) if len(full) <= 300 else None
    if found is None:
        raise ApiError(404, "occupation_not_found", "No ESCO occupation has this URI.")
    return found
