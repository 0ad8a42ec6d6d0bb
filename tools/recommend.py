"""``recommend``: occupation (text or URI) + skills the user has → ranked courses with the gap skills each
covers. A stable contract (``craft recommend --json``); later rankers plug in behind the same fields.

``live=True`` also searches the Weiterbildungssuche for the occupation (``tools.live_courses``): live courses
the catalog lacks join the retrievable set for this request (their skills found like the enrichment finds
them) and, when it found courses, German joins the default course languages; offline it degrades to the
catalog alone (same ranking as without ``live``) and says so in ``notice``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings, get_settings
from knowledge.course_skills import TABLE_FILE, course_store, load_course_skills
from knowledge.store import KnowledgeBase, get_knowledge
from tools.live_courses import live_course_skills, merge_live, search_live_courses
from tools.lookup import find_occupations, find_skills
from tools.retrieval.base import Filters, Retriever
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.query import build_query
from tools.retrieval.registry import course_retriever


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


_retrievers: dict[tuple[str, ...], tuple[CourseCorpus, Retriever]] = {}


def _retriever(kb: KnowledgeBase, settings: Settings) -> tuple[CourseCorpus, Retriever]:
    """The product retriever over the snapshot's catalog on the persistent Chroma indexes, built once per
    (snapshot, store, models, encoder routing)."""
    from knowledge.vectors import chroma_client

    key = (
        kb.manifest.version,
        str(settings.store_dir.resolve()),
        str(settings.model_dir.resolve()),
        repr(sorted(settings.course_encoders.items())),
    )
    if key not in _retrievers:
        corpus = CourseCorpus.from_knowledge(kb)
        _retrievers.clear()
        _retrievers[key] = corpus, course_retriever(settings, corpus, client=chroma_client(settings))
    return _retrievers[key]


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
    live: bool = False,
    location: str | None = None,
    client_options: dict[str, Any] | None = None,
) -> RecommendResult:
    """``live``/``location``: see the module docstring and ``search_live_courses`` (``client_options`` go to
    its API client)."""
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
    corpus, retriever = _retriever(kb, settings)
    course_skills = _course_skills(settings)
    notices: list[str] = []
    if live:
        found = search_live_courses(kb, uri, settings, location=location, client_options=client_options)
        notices += [found.notice] if found.notice else []
        fresh = found.new_courses
        if fresh:
            corpus = CourseCorpus(merge_live(corpus.courses, fresh))
            # exact search over catalog + live courses: cached vectors, only the new courses get embedded,
            # and the persistent Chroma indexes never see request-scoped courses
            retriever = course_retriever(settings, corpus, exact=True, include={c.id for c in fresh})
            course_skills = {**course_skills, **live_course_skills(kb, fresh)}
        languages = query.filters.languages or []
        own_languages = filters is not None and filters.languages is not None
        if found.courses and not own_languages and "de" not in languages:  # the live courses are German
            update = {"filters": query.filters.model_copy(update={"languages": [*languages, "de"]})}
            query = query.model_copy(update=update)
    ranked = retriever.retrieve(query, k)
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
    if len(results) < k:
        notices.append(f"Only {len(results)} courses match the filters.")
    return RecommendResult(
        occupation_uri=uri,
        occupation_label=kb.occupations[uri].label(lang),
        have=[CoveredSkill(uri=u, label=label) for u, label in known.items()],
        recommendations=results,
        notice=" ".join(notices) or None,
    )
