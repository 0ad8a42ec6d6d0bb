"""Suite-wide set-up: never touch a model hub; build the real knowledge base once per session when the
shared data is available (CI sets CRAFT_DATA_DIR=../shared/data; the Makefile points the store at var/test and
samples the embedding index so the suite stays within the CI budget)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from craft.settings import Settings, get_settings


def real_data_dir() -> Path | None:
    raw = os.environ.get("CRAFT_DATA_DIR")
    path = Path(raw) if raw else None
    return path if path and (path / "esco" / "v1.1.1_en" / "occupations_en.csv").exists() else None


@pytest.fixture(scope="session")
def real_settings() -> Settings:
    """Settings over the real shared data with a built snapshot and label indexes (skips without data)."""
    if real_data_dir() is None:
        pytest.skip("real data not available (set CRAFT_DATA_DIR)")
    from knowledge.indexes import build_indexes
    from knowledge.models import prepare
    from knowledge.snapshot import build_snapshot

    get_settings.cache_clear()
    settings = get_settings()
    prepare(settings, ["multilingual-e5-small"])
    build_snapshot(settings)
    build_indexes(settings)
    return settings


@pytest.fixture(scope="session")
def enriched_settings(real_settings: Settings) -> Settings:
    """The real snapshot with course skills built (incremental: seconds when the cache is warm)."""
    from knowledge.course_skills import default_extractors, enrich_courses
    from knowledge.store import get_knowledge

    kb = get_knowledge(real_settings)
    enrich_courses(real_settings, kb, default_extractors(real_settings, kb), progress=False)
    return real_settings


@pytest.fixture(scope="session")
def agent_settings(enriched_settings: Settings) -> Settings:
    """The advisor over the real knowledge base with in-memory conversations and template explanations (the
    model-written explanations have their own tests), so dialogues run in seconds."""
    return enriched_settings.model_copy(update={"checkpoint_url": ":memory:", "explain_backend": "template"})
