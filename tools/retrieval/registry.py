"""The course retriever the product uses (``course_retriever``), assembled from settings, so the agent,
``craft recommend`` and ``craft eval`` run the same system.

Dense retrieval is routed by language (``Settings.course_encoders``): a monolingual encoder answers only
when the query and every course language allowed by the filters are its language; anything else goes to the
multilingual ``*`` encoder, whose space is shared by EN and DE. Each encoder is loaded, and its course index
built or synced, on first use — an English-only session never pays for the multilingual model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chromadb.api import ClientAPI

from craft.settings import Settings
from tools.retrieval.base import RetrievalQuery, Retriever, ScoredCourse
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.dense import VIEWS, DenseRetriever, View

ANY_LANGUAGE = "*"
RETRIEVER = "retriever"  # registry name of the trained course encoder (``craft train retriever``)


def route(query: RetrievalQuery, keys: list[str]) -> str:
    """The ``course_encoders`` key that serves ``query`` (pure: tested without loading a model)."""
    allowed = set(query.filters.languages or [])
    if query.lang in keys and query.lang != ANY_LANGUAGE and allowed == {query.lang}:
        return query.lang
    if ANY_LANGUAGE in keys:
        return ANY_LANGUAGE
    raise LookupError(f"no encoder serves language {query.lang!r} with course languages {sorted(allowed)}")


def collection_name(key: str, encoder: str | None = None) -> str:
    """``courses`` for the multilingual index, ``courses-<lang>`` for a monolingual one, then ``-<encoder>``.

    The encoder's registry name (``get_encoder(...).name``: a base model or a trained ``retriever-<hash>``) is
    part of the name because the index syncs by course content hash only: a key whose encoder changed would
    otherwise keep serving the old encoder's vectors.
    """
    name = "courses" if key == ANY_LANGUAGE else f"courses-{key}"
    return f"{name}-{encoder}" if encoder else name


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

    def prime(self, queries: Sequence[RetrievalQuery]) -> None:
        """Batch-encode many queries ahead of ``retrieve`` (offline work), per route."""
        groups: dict[int, tuple[Retriever, list[RetrievalQuery]]] = {}
        for query in queries:
            retriever = self.retriever_for(query)
            groups.setdefault(id(retriever), (retriever, []))[1].append(query)
        for retriever, members in groups.values():
            prime = getattr(retriever, "prime", None)
            if prime is not None:
                prime(members)


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

    encoder = get_encoder(model, settings)
    cache = vector_cache(settings, encoder)
    return DenseRetriever(
        corpus,
        encoder,
        cache,
        client=client,
        collection=collection,
        exact=exact,
        views=views,
        name=name,
        only=indexed_courses(settings, corpus, include),
        progress=progress,
    )


def indexed_courses(
    settings: Settings, corpus: CourseCorpus, include: set[str] | None = None
) -> set[str] | None:
    """The course ids a dense index holds: None (every described course), or with ``settings.index_sample``
    (CI) a fixed sample per source (small catalogs stay whole) plus ``include``."""
    from knowledge.vectors import sample_uris

    if settings.index_sample is None:
        return None
    frame = corpus.courses[corpus.courses.has_description.astype(bool)]
    only = set(include or set())
    for _, group in frame.groupby("source"):
        only |= sample_uris(group.id.tolist(), settings.index_sample)
    return only


def routed_dense(
    settings: Settings,
    corpus: CourseCorpus,
    *,
    client: ClientAPI | None = None,
    exact: bool = False,
    views: tuple[View, ...] = VIEWS,
    include: set[str] | None = None,
    progress: bool = False,
    name: str = "routed",
) -> LanguageRoutedRetriever:
    """One lazily built dense retriever per ``course_encoders`` entry, each with its encoder's collection."""
    from knowledge.encoders import get_encoder

    def factory(key: str, model: str) -> Callable[[], Retriever]:
        return lambda: dense_retriever(
            settings,
            corpus,
            model,
            client=client,
            collection=collection_name(key, get_encoder(model, settings).name),
            exact=exact,
            views=views,
            include=include,
            progress=f"courses ({model})" if progress else None,
        )

    factories = {key: factory(key, m) for key, m in settings.course_encoders.items()}
    return LanguageRoutedRetriever(factories, name=name)


def with_trained_retriever(settings: Settings) -> dict[str, str]:
    """``course_encoders`` with the trained retriever (its exact registry folder) wherever its base serves.

    A retriever fine-tuned from MiniLM takes the ``en`` route, one from e5 the ``*`` route. The product keeps
    its configured encoders until ``course_encoders`` names ``retriever`` (the newest trained one) or a
    ``retriever-<hash>`` folder; this is what the ``routed-ft`` evaluation system runs. ``ModelMissing`` when
    none is trained, ``LookupError`` when its base model serves no route.
    """
    from knowledge.models import resolve

    _, manifest = resolve(settings, RETRIEVER)
    encoders = dict(settings.course_encoders)
    swapped = {
        key: manifest.name if model == manifest.base_model else model for key, model in encoders.items()
    }
    if swapped == encoders:
        raise LookupError(
            f"the trained retriever {manifest.name} was fine-tuned from {manifest.base_model!r}, which "
            f"serves no course_encoders route ({encoders})"
        )
    return swapped


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
