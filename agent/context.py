"""Run-scoped context of the graph: settings and the loaded components (retriever, ranker, explanation
generator, optional chat model). Loaded once per process and shared by every conversation; never
checkpointed (only ``AdvisorState`` is)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from craft.settings import Settings, get_settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from knowledge.store import KnowledgeBase
    from tools.explain.generator import ExplanationGenerator
    from tools.recommend import CourseFinder

Understanding = Literal["rules", "llm"]


@dataclass
class Services:
    """Heavy components, built lazily on first use (a greeting turn loads no model)."""

    settings: Settings
    chat_model: BaseChatModel | None = None
    """An instruction-following chat model for the LLM understanding path (None: rules only)."""

    _finder: CourseFinder | None = None
    _generator: ExplanationGenerator | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def kb(self) -> KnowledgeBase:
        from knowledge.store import get_knowledge

        return get_knowledge(self.settings)

    @property
    def finder(self) -> CourseFinder:
        from tools.recommend import CourseFinder

        with self._lock:
            if self._finder is None:
                self._finder = CourseFinder(self.settings, ranker=self.settings.agent_ranker)
            return self._finder

    @property
    def generator(self) -> ExplanationGenerator:
        from tools.explain.generator import ExplanationGenerator

        with self._lock:
            if self._generator is None:
                self._generator = ExplanationGenerator.from_settings(
                    self.settings, kb=self.kb, backend=self.settings.explain_backend
                )
            return self._generator

    def warm(self, explain: bool = True) -> None:
        """Load everything now (server start-up, benchmarks) instead of on the first user's turn."""
        from tools.lookup import find_occupations, find_skills
        from tools.retrieval.query import build_query

        found = find_occupations("data analyst", "en", k=1)
        find_skills("SQL", "en", k=1)
        if found:  # one query per language loads every encoder the routing may use
            for lang in ("en", "de"):
                self.finder.find(build_query(self.kb, found[0].uri, lang=lang), 5)
        if explain:
            _ = self.generator


_services: dict[str, Services] = {}
_services_lock = threading.Lock()


def get_services(settings: Settings | None = None, chat_model: Any = None) -> Services:
    """One ``Services`` per settings (and chat model) per process."""
    settings = settings or get_settings()
    key = settings.model_dump_json() + f"|{id(chat_model) if chat_model is not None else ''}"
    with _services_lock:
        if key not in _services:
            _services[key] = Services(settings, chat_model=chat_model)
        return _services[key]


@dataclass
class AdvisorContext:
    """Per-run options of the graph (``graph.ainvoke(..., context=AdvisorContext(...))``)."""

    services: Any = field(default_factory=lambda: get_services())
    """The loaded components (a ``Services``; typed loosely so LangGraph can describe the context schema)."""

    k: int = 5
    """Courses per recommendation list."""

    explain: bool = True
    """Write explanations (off for load tests and evaluation replays)."""

    understanding: Understanding = "rules"
    """``llm``: the chat model reads messages into state updates (rules when it fails or is absent)."""
