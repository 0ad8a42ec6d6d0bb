"""Training tests run on the real knowledge base (``enriched_settings``) but write models and checkpoints
into temporary folders; the base MiniLM is the prepared one of the test model dir, linked in, not copied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from craft.settings import Settings


@pytest.fixture(scope="session")
def base_minilm(enriched_settings: Settings) -> Path:
    from knowledge.models import model_path, prepare

    prepare(enriched_settings, ["all-MiniLM-L6-v2"])
    return model_path(enriched_settings, "all-MiniLM-L6-v2").resolve()


Isolate = Callable[[Path], Settings]


@pytest.fixture(scope="session")
def isolate(enriched_settings: Settings, base_minilm: Path) -> Isolate:
    """Settings with an empty model registry (but the base MiniLM) and a cache under the given folder."""

    def make(root: Path) -> Settings:
        models = root / "models"
        models.mkdir(parents=True)
        (models / base_minilm.name).symlink_to(base_minilm, target_is_directory=True)
        return enriched_settings.model_copy(update={"model_dir": models, "cache_dir": root / "cache"})

    return make


@pytest.fixture
def train_settings(isolate: Isolate, tmp_path: Path) -> Settings:
    return isolate(tmp_path)


LinkBase = Callable[[Settings, str], Path]


@pytest.fixture(scope="session")
def link_base(enriched_settings: Settings) -> LinkBase:
    """Links another prepared base model (e.g. multilingual-e5-small-torch) into an isolated registry."""
    from knowledge.models import model_path, prepare

    def link(settings: Settings, name: str) -> Path:
        prepare(enriched_settings, [name])
        source = model_path(enriched_settings, name).resolve()
        target = model_path(settings, name)
        if not target.exists():
            target.symlink_to(source, target_is_directory=True)
        return target

    return link
