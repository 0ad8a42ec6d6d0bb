"""``recommend``: occupation (text or URI) + skills the user has → ranked courses with the gap skills each
covers. A stable contract (``craft recommend --json``); later rankers plug in behind the same fields."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings, get_settings
from knowledge.course_skills import TABLE_FILE, course_store, load_course_skills
from knowledge.store import KnowledgeBase, get_knowledge
from tools.lookup import find_occupations, find_skills
from tools.retrieval.base import Filters, Retriever
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.diversity import coverage_rerank
from tools.retrieval.lexical import BM25Retriever
from tools.retrieval.query import build_query

CANDIDATE_DEPTH = 50


class CoveredSkill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str
    label: str


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    course_id: str
    source: str
    url: str | None
    title: str
    score: float
    covers: list[CoveredSkill] = Field(description="Gap skills (ESCO) this course teaches.")


class RecommendResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    occupation_uri: str | None
    occupation_label: str | None
    have: list[CoveredSkill] = Field(default_factory=list, description="Skills understood as already known.")
    recommendations: list[Recommendation] = Field(default_factory=list)
    notice: str | None = None


@lru_cache(maxsize=2)
def _retriever(snapshot: str) -> tuple[CourseCorpus, Retriever]:
    corpus = CourseCorpus.from_knowledge(get_knowledge())
    return corpus, BM25Retriever(corpus)


_skills_cache: dict[tuple[str, int], dict[str, set[str]]] = {}


def _course_skills(settings: Settings) -> dict[str, set[str]]:
    """The course→skills map, re-read only when the enrichment table changes (not on every request)."""
    path = course_store(settings) / TABLE_FILE
    key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    if key not in _skills_cache:
        _skills_cache.clear()
        _skills_cache[key] = load_course_skills(settings)
    return _skills_cache[key]


def _resolve_occupation(kb: KnowledgeBase, occupation: str, lang: str) -> str | None:
    if occupation.strip() in kb.occupations:
        return occupation.strip()
    found = find_occupations(occupation, lang, k=1)
    return found[0].uri if found else None


def recommend(
    occupation: str,
    have: list[str] | None = None,
    *,
    k: int = 10,
    lang: str = "en",
    filters: Filters | None = None,
    settings: Settings | None = None,
) -> RecommendResult:
    settings = settings or get_settings()
    kb = get_knowledge(settings)
    uri = _resolve_occupation(kb, occupation, lang)
    if uri is None:
        return RecommendResult(
            occupation_uri=None, occupation_label=None, notice=f"No ESCO occupation matches {occupation!r}."
        )
    known: dict[str, str] = {}
    for text in have or []:
        for skill in find_skills(text, lang, k=3):
            known.setdefault(skill.uri, skill.label)
    query = build_query(kb, uri, set(known), lang=lang, filters=filters)
    corpus, retriever = _retriever(kb.manifest.version)
    hits = retriever.retrieve(query, CANDIDATE_DEPTH)
    course_skills = _course_skills(settings)
    ranked = coverage_rerank(hits, course_skills, query.gap, k)
    gap_labels = {g.uri: g.label for g in query.gap}
    results = []
    for hit in ranked:
        row = corpus.courses.iloc[corpus.position[hit.course_id]]
        covers = [
            CoveredSkill(uri=s, label=gap_labels[s])
            for s in sorted(course_skills.get(hit.course_id, set()) & set(gap_labels), key=gap_labels.get)
        ]
        url = row.url if isinstance(row.url, str) else None
        results.append(
            Recommendation(
                course_id=hit.course_id,
                source=row.source,
                url=url,
                title=row.title,
                score=hit.score,
                covers=covers,
            )
        )
    notice = None if len(results) >= k else f"Only {len(results)} courses match the filters."
    return RecommendResult(
        occupation_uri=uri,
        occupation_label=kb.occupations[uri].label(lang),
        have=[CoveredSkill(uri=u, label=label) for u, label in known.items()],
        recommendations=results,
        notice=notice,
    )
