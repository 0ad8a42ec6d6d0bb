"""The course retriever the product uses (``course_retriever``), assembled from settings, so the agent,
``craft recommend`` and ``craft eval`` run the same system.

Dense retrieval is routed by language (``Settings.course_encoders``): a monolingual encoder answers only
when the query and every course language allowed by the filters are its language; anything else goes to the
multilingual ``*`` encoder, whose space is shared by EN and DE. Each encoder is loaded, and its course index
built or synced, on first use — an English-only session never pays for the multilingual model.
"""

from __future__ import annotations

from collections.abc import Callable

from chromadb.api import ClientAPI

from craft.settings import Settings
from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.dense import VIEWS, DenseRetriever, View

ANY_LANGUAGE = "*"


def route(query: RetrievalQuery, keys: list[str]) -> str:
    """The ``course_encoders`` key that serves ``query`` (pure: tested without loading a model)."""
    allowed = set(query.filters.languages or [])
    if query.lang in keys and query.lang != ANY_LANGUAGE and allowed == {query.lang}:
        return query.lang
    if ANY_LANGUAGE in keys:
        return ANY_LANGUAGE
    raise LookupError(f"no encoder serves language {query.lang!r} with course languages {sorted(allowed)}")


def collection_name(key: str) -> str:
    """``courses`` for the multilingual index, ``courses-<lang>`` for a monolingual one."""
    return "courses" if key == ANY_LANGUAGE else f"courses-{key}"


class LanguageRoutedRetriever(Retriever):
    """Delegates each query to the retriever of its language route; retrievers are built lazily."""

    def __init__(self, factories: dict[str, Callable[[], Retriever]], name: str = "routed") -> None:
        if not factories:
            raise ValueError("no retrievers to route to")
        self.factories, self.name = factories, name
        self._built: dict[str, Retriever] = {}

    def retriever_for(self, query: RetrievalQuery) -> Retriever:
        key = route(query, list(self.factories))
        if key not in self._built:
            self._built[key] = self.factories[key]()
        return self._built[key]

    def retrieve(self, query: RetrievalQuery, k: int = 10) -> list[ScoredCourse]:
        return self.retriever_for(query).retrieve(query, k)


def dense_retriever(
    settings: Settings,
    corpus: CourseCorpus,
    model: str,
    *,
    client: ClientAPI | None = None,
    collection: str = "courses",
    exact: bool = False,
    views: tuple[View, ...] = VIEWS,
    name: str = "dense",
    include: set[str] | None = None,
    progress: str | None = None,
) -> DenseRetriever:
    """A dense retriever for one registered encoder; course vectors come from (and go to) the vector cache.

    With ``settings.index_sample`` (CI) only a seeded sample per catalog source is embedded, plus ``include``
    (request-scoped courses such as live search results, which must always be retrievable)."""
    from knowledge.encoders import get_encoder
    from knowledge.indexes import vector_cache
    from knowledge.vectors import sample_uris

    encoder = get_encoder(model, settings)
    cache = vector_cache(settings, encoder)
    only = None
    if settings.index_sample is not None:  # CI: a fixed sample per source (small catalogs stay whole)
        frame = corpus.courses[corpus.courses.has_description.astype(bool)]
        only = set(include or set())
        for _, group in frame.groupby("source"):
            only |= sample_uris(group.id.tolist(), settings.index_sample)
    return DenseRetriever(
        corpus,
        encoder,
        cache,
        client=client,
        collection=collection,
        exact=exact,
        views=views,
        name=name,
        only=only,
        progress=progress,
    )


def routed_dense(
    settings: Settings,
    corpus: CourseCorpus,
    *,
    client: ClientAPI | None = None,
    exact: bool = False,
    views: tuple[View, ...] = VIEWS,
    include: set[str] | None = None,
    progress: bool = False,
) -> LanguageRoutedRetriever:
    """One lazily built dense retriever per ``course_encoders`` entry."""

    def factory(key: str, model: str) -> Callable[[], Retriever]:
        return lambda: dense_retriever(
            settings,
            corpus,
            model,
            client=client,
            collection=collection_name(key),
            exact=exact,
            views=views,
            include=include,
            progress=f"courses ({model})" if progress else None,
        )

    return LanguageRoutedRetriever({key: factory(key, m) for key, m in settings.course_encoders.items()})


def course_retriever(
    settings: Settings,
    corpus: CourseCorpus,
    *,
    client: ClientAPI | None = None,
    exact: bool = False,
    include: set[str] | None = None,
    progress: bool = False,
) -> Retriever:
    """The product's first stage: language-routed two-view dense retrieval.

    Chosen on the gold set (docs/benchmarks.md): it beats BM25 and the BM25 + dense fusion there; the trained
    retriever and reranker of the training stage replace or follow it through this same function.
    """
    return routed_dense(settings, corpus, client=client, exact=exact, include=include, progress=progress)
