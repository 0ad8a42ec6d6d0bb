"""Shared fixtures of the knowledge tests: the tiny hand-made ESCO/BA folders and a data dir built from them.

``tests/fixtures/esco_tiny`` and ``tests/fixtures/ba_tiny`` use the real column headers and file layouts with
our own rows; ``tests/fixtures/courses`` holds small course catalogs under the real file names.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from tiny_data import BA_TINY, ESCO_TINY_DE, ESCO_TINY_EN, make_tiny_data_dir

from craft.settings import Settings
from knowledge.ba import BaTables, load_ba
from knowledge.esco import EscoTables, load_esco


@pytest.fixture(scope="session")
def tiny_esco() -> EscoTables:
    return load_esco(ESCO_TINY_EN, ESCO_TINY_DE)


@pytest.fixture(scope="session")
def tiny_ba() -> BaTables:
    tables = load_ba(BA_TINY)
    assert tables is not None
    return tables


@pytest.fixture
def tiny_data_settings(tmp_path: Path) -> Settings:
    """Fresh copy of the tiny data dir per test (tests that edit input files need their own)."""
    return make_tiny_data_dir(tmp_path)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """``$CRAFT_DATA_DIR`` with the ESCO v1.1.1 download, or the test is skipped."""
    root = os.environ.get("CRAFT_DATA_DIR")
    if not root:
        pytest.skip("CRAFT_DATA_DIR is not set")
    if not (Path(root) / "esco" / "v1.1.1_en").is_dir():
        pytest.skip(f"{root}/esco/v1.1.1_en does not exist")
    return Path(root)


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to ``tmp_path/name`` exactly (no newline translation) and return the path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return path

    return write


@pytest.fixture(scope="session")
def prepared_models(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """MiniLM and multilingual-e5-small prepared once into a tmp model registry (copies from the packages)."""
    from knowledge.models import prepare

    root = tmp_path_factory.mktemp("models")
    settings = Settings(model_dir=root / "models", store_dir=root / "store", data_dir=root / "data")
    prepare(settings, ["all-MiniLM-L6-v2", "multilingual-e5-small"], console=Console(file=io.StringIO()))
    return settings


@pytest.fixture
def hf_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Model loads must never reach the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def real_esco(real_data_dir: Path) -> EscoTables:
    return load_esco(real_data_dir / "esco" / "v1.1.1_en", real_data_dir / "esco" / "de_v1.1.0")


@pytest.fixture(scope="session")
def real_ba(real_data_dir: Path) -> BaTables:
    tables = load_ba(real_data_dir / "ba")
    assert tables is not None
    return tables
