"""``recommend``: occupation (text or URI) + skills the user has → ranked courses with the gap skills each
covers. A stable contract (``craft recommend --json``); later rankers plug in behind the same fields.

``live=True`` also searches the Weiterbildungssuche for the occupation (``tools.live_courses``): live courses
the catalog lacks join the retrievable set for this request (their skills found like the enrichment finds
them) and, when it found courses, German joins the default course languages; offline it degrades to the
catalog alone (same ranking as without ``live``) and says so in ``notice``."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from craft.settings import Settings, get_settings
from knowledge.course_skills import TABLE_FILE, course_store, load_course_skills
from knowledge.store import KnowledgeBase, get_knowledge
from tools.live_courses import live_course_skills, merge_live, search_live_courses
from tools.lookup import find_occupations, find_skills
from tools.retrieval.base import Filters, RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.diversity import coverage_rerank
from tools.retrieval.query import build_query
from tools.retrieval.registry import course_retriever


class CoveredSkill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str
    label: str


class Recommendation(BaseModel):
    """A catalog course as a card: what it is, what it costs, which gap skills it teaches."""

    model_config = ConfigDict(extra="forbid")

    course_id: str
    source: str
    url: str | None
    title: str
    score: float
    covers: list[CoveredSkill] = Field(description="Gap skills (ESCO) this course teaches.")
    provider: str | None = None
    language: str | None = None
    level: str | None = None
    format: str | None = None
    price: float | None = None
    currency: str | None = None
    free: bool | None = None


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


def cached_course_skills(settings: Settings) -> dict[str, set[str]]:
    """The course→skills map, re-read only when the enrichment table changes (not on every request)."""
    path = course_store(settings) / TABLE_FILE
    key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    if key not in _skills_cache:
        _skills_cache.clear()
        _skills_cache[key] = load_course_skills(settings)
    return _skills_cache[key]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def course_card(
    row: Any, course_id: str, score: float, course_skills: set[str], gap_labels: dict[str, str]
) -> Recommendation:
    """The card of one catalog row; ``covers`` are the gap skills it teaches, in label order."""
    covers = [
        CoveredSkill(uri=s, label=gap_labels[s])
        for s in sorted(course_skills & set(gap_labels), key=gap_labels.get)
    ]
    free = row.free if isinstance(row.free, bool) else None
    return Recommendation(
        course_id=course_id,
        source=row.source,
        url=_text(row.url),
        title=row.title,
        score=score,
        covers=covers,
        provider=_text(row.provider),
        language=_text(row.language),
        level=_text(row.level),
        format=_text(row.format),
        price=_number(row.price),
        currency=_text(row.currency),
        free=free,
    )


Ranker = Literal["first-stage", "cross-encoder", "llm"]
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)


class CourseFinder:
    """The agent's course search: the product retriever, hard exclusions (disliked or taken courses, topics
    the user skips), an optional re-ranker over the top 20 and a coverage-aware order of the final list."""

    def __init__(self, settings: Settings | None = None, *, ranker: Ranker = "first-stage") -> None:
        self.settings = settings or get_settings()
        self.kb = get_knowledge(self.settings)
        self.corpus, first = _retriever(self.kb, self.settings)
        self.ranker = ranker
        self.retriever: Retriever = first
        if ranker == "cross-encoder":
            from tools.retrieval.rerank import trained_cross_encoder

            self.retriever = trained_cross_encoder(first, self.corpus, self.settings)
        elif ranker == "llm":
            from tools.retrieval.llm_rank import trained_llm_ranker

            self.retriever = trained_llm_ranker(first, self.corpus, self.settings)

    def find(
        self,
        query: RetrievalQuery,
        k: int = 5,
        *,
        exclude_ids: set[str] | None = None,
        exclude_terms: list[str] | None = None,
        coverage_weight: float = 0.0,
        coverage_depth: int | None = None,
        per_language: bool = False,
    ) -> list[Recommendation]:
        """Top ``k`` courses for ``query`` that break no filter and no exclusion; fewer when fewer qualify
        (never padded). ``per_language``: see ``_per_language`` (the languages were not the user's choice)."""
        exclude_ids = exclude_ids or set()
        terms = [t.lower() for t in exclude_terms or [] if t.strip()]
        depth = max(20, coverage_depth or k, k) + len(exclude_ids)
        skills = cached_course_skills(self.settings)
        if per_language and len(query.filters.languages or []) > 1 and query.occupation_uri:
            found = self._per_language(query, depth, skills)
        else:
            found = self.retriever.retrieve(query, depth)
        hits = [h for h in found if h.course_id not in exclude_ids and not self._mentions(h.course_id, terms)]
        hits = self._distinct_titles(hits)
        # Off by default: drawing courses from deeper for coverage (routed+cov, depth 50) cost gold nDCG@10
        # 0.81 → 0.54 and re-ordering within the top k cost 0.03 for no coverage gain (docs/benchmarks.md),
        # so the list keeps the retriever's order and the learning path tells the user what covers what.
        if coverage_weight > 0:
            ordered = coverage_rerank(
                hits[: coverage_depth or k], skills, query.gap, k, weight=coverage_weight
            )
        else:
            ordered = hits[:k]
        gap_labels = {g.uri: g.label for g in query.gap}
        rows = self.corpus.courses
        return [
            course_card(
                rows.iloc[self.corpus.position[h.course_id]],
                h.course_id,
                h.score,
                skills.get(h.course_id, set()),
                gap_labels,
            )
            for h in ordered
        ]

    def _per_language(
        self, query: RetrievalQuery, depth: int, skills: dict[str, set[str]]
    ) -> list[ScoredCourse]:
        """One ranking per course language, fused by reciprocal rank. A German query scored against German
        and English courses at once favours German text whatever it is about (the small German catalog put
        "Betriebliches Eingliederungsmanagement" first for a cook), so each language is searched on its own —
        English courses with the same profile in English (the route measured best on gold) — and a course in
        a language other than English must teach at least one gap skill to be shown."""
        gap = {g.uri for g in query.gap}
        have = {s for s, _ in self.kb.occupation_skills.get(query.occupation_uri or "", [])} - gap
        rankings: list[list[ScoredCourse]] = []
        for language in query.filters.languages or []:
            filters = query.filters.model_copy(update={"languages": [language]})
            if language == "en" and query.lang != "en":
                one = build_query(self.kb, query.occupation_uri or "", have, lang="en", filters=filters)
            else:
                one = query.model_copy(update={"filters": filters})
            hits = self.retriever.retrieve(one, depth)
            if language != "en":
                hits = [h for h in hits if skills.get(h.course_id, set()) & gap]
            rankings.append(hits)
        fused: dict[str, float] = {}
        for hits in rankings:
            for rank, hit in enumerate(hits):
                fused[hit.course_id] = fused.get(hit.course_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        order = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
        return [ScoredCourse(course_id=cid, score=score) for cid, score in order[:depth]]

    def _distinct_titles(self, hits: list[ScoredCourse]) -> list[ScoredCourse]:
        """One course per title: the same course offered twice (two runs or catalogs) takes one slot."""
        seen: set[str] = set()
        kept = []
        for hit in hits:
            title = " ".join(str(self.corpus.courses.title.iloc[self.corpus.position[hit.course_id]]).split())
            if title.casefold() not in seen:
                seen.add(title.casefold())
                kept.append(hit)
        return kept

    def _mentions(self, course_id: str, terms: list[str]) -> bool:
        if not terms:
            return False
        title = str(self.corpus.courses.title.iloc[self.corpus.position[course_id]]).lower()
        return any(re.search(rf"\b{re.escape(t)}\b", title) for t in terms)


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
    course_skills = cached_course_skills(settings)
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
    results = [
        course_card(
            corpus.courses.iloc[corpus.position[hit.course_id]],
            hit.course_id,
            hit.score,
            course_skills.get(hit.course_id, set()),
            gap_labels,
        )
        for hit in ranked
    ]
    if len(results) < k:
        notices.append(f"Only {len(results)} courses match the filters.")
    return RecommendResult(
        occupation_uri=uri,
        occupation_label=kb.occupations[uri].label(lang),
        have=[CoveredSkill(uri=u, label=label) for u, label in known.items()],
        recommendations=results,
        notice=" ".join(notices) or None,
    )
