"""Language routing of dense course retrieval, query views, and the cross-lingual promise with the real
multilingual encoder: a German query finds the English course and the reverse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from retrieval_fakes import HashingEncoder, course

from craft.settings import Settings, get_settings
from knowledge.encoders import VectorCache
from tools.retrieval.base import Filters, RetrievalQuery
from tools.retrieval.corpus import CourseCorpus
from tools.retrieval.dense import VIEWS, DenseRetriever, view_text
from tools.retrieval.registry import ANY_LANGUAGE, LanguageRoutedRetriever, collection_name, route

KEYS = ["en", ANY_LANGUAGE]


def q(lang: str, languages: list[str] | None, **fields: object) -> RetrievalQuery:
    return RetrievalQuery(lang=lang, filters=Filters(languages=languages), **fields)


@pytest.mark.parametrize(
    ("lang", "languages", "expected"),
    [
        ("en", ["en"], "en"),  # English asked, English courses only: the English encoder
        ("en", ["en", "de"], ANY_LANGUAGE),  # German courses allowed: must be cross-lingual
        ("en", None, ANY_LANGUAGE),  # no language filter means every language
        ("de", ["de", "en"], ANY_LANGUAGE),
        ("de", ["de"], ANY_LANGUAGE),  # no German-only encoder configured
    ],
)
def test_route(lang: str, languages: list[str] | None, expected: str) -> None:
    assert route(q(lang, languages), KEYS) == expected


def test_route_without_a_multilingual_encoder_is_an_error() -> None:
    assert route(q("en", ["en"]), ["en"]) == "en"
    with pytest.raises(LookupError, match="no encoder serves language 'de'"):
        route(q("de", ["de", "en"]), ["en"])


def test_collections_are_named_per_encoder_key() -> None:
    assert collection_name(ANY_LANGUAGE) == "courses" and collection_name("en") == "courses-en"


def test_routed_retriever_builds_each_side_lazily() -> None:
    built: list[str] = []

    class Fixed(DenseRetriever):
        def __init__(self, tag: str) -> None:  # no index: only records which side answered
            self.tag = tag

        def retrieve(self, query: RetrievalQuery, k: int = 10) -> list:
            return [self.tag]

    def factory(tag: str):
        def build() -> Fixed:
            built.append(tag)
            return Fixed(tag)

        return build

    routed = LanguageRoutedRetriever({"en": factory("en"), ANY_LANGUAGE: factory("*")})
    assert routed.retrieve(q("en", ["en"])) == ["en"] and built == ["en"]
    assert routed.retrieve(q("en", ["en"])) == ["en"] and built == ["en"]  # built once
    assert routed.retrieve(q("de", ["de", "en"])) == ["*"] and built == ["en", "*"]


def test_views() -> None:
    query = RetrievalQuery(
        occupation_label="data analyst",
        occupation_description="Analyses data.",
        text="data analyst. SQL. SQL",
    )
    assert view_text(query, "profile") == "data analyst. SQL. SQL"
    assert view_text(query, "occupation") == "data analyst. Analyses data."
    assert view_text(RetrievalQuery(text="only text"), "occupation") == "only text"


def test_two_views_sum_unit_vectors(tmp_path: Path) -> None:
    corpus = CourseCorpus(
        pd.DataFrame([course("c1", "SQL basics", "Queries."), course("c2", "Bread", "Yeast.")])
    )
    encoder = HashingEncoder()
    retriever = DenseRetriever(corpus, encoder, VectorCache(tmp_path / "v.sqlite", encoder), views=VIEWS)
    query = RetrievalQuery(
        occupation_label="baker", occupation_description="Bakes bread.", text="SQL queries"
    )
    vector = retriever.query_vector(query)
    expected = encoder.encode(["SQL queries", "baker. Bakes bread."]).sum(axis=0)
    assert np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)
    with pytest.raises(ValueError, match="at least one query view"):
        DenseRetriever(corpus, encoder, VectorCache(tmp_path / "w.sqlite", encoder), views=())


CROSS_LINGUAL = [
    course("en-sql", "SQL for data analysis", "Write SQL queries, join tables and analyse business data."),
    course("en-bread", "Artisan bread baking", "Knead dough, proof sourdough and bake crusty loaves."),
    course("en-care", "Patient care basics", "Care for elderly patients, hygiene and wound dressing."),
    course(
        "de-pflege",
        "Grundlagen der Altenpflege",
        "Pflege älterer Menschen, Hygiene, Wundversorgung und Dokumentation.",
        language="de",
    ),
    course(
        "de-sql",
        "Datenbanken mit SQL",
        "SQL-Abfragen schreiben, Tabellen verknüpfen und Daten auswerten.",
        language="de",
    ),
    course("de-brot", "Brot backen", "Sauerteig ansetzen, Teig kneten und Brot backen.", language="de"),
]


@pytest.fixture(scope="module")
def multilingual(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, DenseRetriever]:
    from knowledge.models import is_prepared
    from tools.retrieval.registry import dense_retriever

    settings = get_settings()
    model = settings.course_encoders[ANY_LANGUAGE]
    if not is_prepared(settings, model):
        pytest.skip(f"{model} not prepared (make test prepares it)")
    settings = settings.model_copy(update={"store_dir": tmp_path_factory.mktemp("store")})
    corpus = CourseCorpus(pd.DataFrame(CROSS_LINGUAL))
    return settings, dense_retriever(settings, corpus, model, exact=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lang", "label", "description", "languages", "expected"),
    [
        ("de", "Datenanalyst", "Analysiert Unternehmensdaten mit Datenbanken.", ["en"], "en-sql"),
        ("de", "Altenpfleger", "Betreut und pflegt ältere Menschen.", ["en"], "en-care"),
        ("en", "baker", "Bakes bread and pastry.", ["de"], "de-brot"),
        ("en", "nurse for the elderly", "Cares for elderly patients.", ["de"], "de-pflege"),
    ],
)
def test_cross_lingual_retrieval(
    multilingual: tuple[Settings, DenseRetriever],
    lang: str,
    label: str,
    description: str,
    languages: list[str],
    expected: str,
) -> None:
    _, retriever = multilingual
    query = RetrievalQuery(
        occupation_label=label,
        occupation_description=description,
        text=f"{label}. {description}",
        lang=lang,
        filters=Filters(languages=languages),
    )
    hits = retriever.retrieve(query, 3)
    assert hits[0].course_id == expected
    assert all(h.course_id.startswith(languages[0]) for h in hits)  # the filter, not the encoder, decides
