"""Stateless recommendations: occupation + known skills (+ filters) → ranked courses with the gap skills each
covers, without a conversation (``tools.recommend.recommend``). Public, rate limited."""

from __future__ import annotations

from fastapi import APIRouter

from channels.http.deps import RateLimited, SettingsDep
from channels.http.errors import responses
from channels.http.offload import offload
from channels.http.schemas import RecommendIn
from tools.recommend import RecommendResult, recommend

router = APIRouter(prefix="/v1", tags=["recommend"], dependencies=[RateLimited])


@router.post(
    "/recommend",
    response_model=RecommendResult,
    responses=responses(400, 413, 422, 429, 503),
    summary="Courses for an occupation and the skills a person has",
)
async def recommend_courses(body: RecommendIn, settings: SettingsDep) -> RecommendResult:
    return await offload(
        recommend,
        body.occupation,
        body.skills_have,
        k=body.k,
        lang=body.lang,
        filters=body.filters,
        settings=settings,
    )
