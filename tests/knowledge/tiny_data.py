"""Paths and URIs of the tiny hand-made sources in tests/fixtures (imported by the knowledge tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

from craft.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ESCO_TINY_EN = FIXTURES / "esco_tiny" / "en"
ESCO_TINY_DE = FIXTURES / "esco_tiny" / "de"
BA_TINY = FIXTURES / "ba_tiny"
COURSES = FIXTURES / "courses"

OCC = "http://data.europa.eu/esco/occupation/"
SKILL = "http://data.europa.eu/esco/skill/"
NURSE = OCC + "10000000-0000-4000-8000-000000000001"
BAKER = OCC + "10000000-0000-4000-8000-000000000002"
SOFTWARE_DEV = OCC + "10000000-0000-4000-8000-000000000003"
CLERK = OCC + "10000000-0000-4000-8000-000000000004"
WEB_DEV = OCC + "10000000-0000-4000-8000-000000000006"
RADIO_ASSISTANT = OCC + "a9e54177-a185-404d-b6e6-15663d31137e"  # German row only, like ESCO v1.1.1
S_MEDICATION = SKILL + "20000000-0000-4000-8000-000000000001"
S_NURSING = SKILL + "20000000-0000-4000-8000-000000000002"
S_BAKE = SKILL + "20000000-0000-4000-8000-000000000003"
S_HYGIENE = SKILL + "20000000-0000-4000-8000-000000000004"
S_CPP = SKILL + "20000000-0000-4000-8000-000000000005"
S_CSHARP = SKILL + "20000000-0000-4000-8000-000000000006"
S_OFFICE = SKILL + "20000000-0000-4000-8000-000000000007"
S_RADIATION = SKILL + "20000000-0000-4000-8000-000000000008"
S_PYTHON = SKILL + "20000000-0000-4000-8000-000000000009"
S_TEAMWORK = SKILL + "20000000-0000-4000-8000-000000000010"  # no German label
UNKNOWN_SKILL = SKILL + "2dead000-0000-4000-8000-00000000beef"


def make_tiny_data_dir(root: Path) -> Settings:
    """Copy the tiny sources into ``root/data`` in the real layout; settings point there."""
    data = root / "data"
    shutil.copytree(ESCO_TINY_EN, data / "esco" / "en")
    shutil.copytree(ESCO_TINY_DE, data / "esco" / "de")
    shutil.copytree(BA_TINY, data / "ba")
    shutil.copytree(COURSES, data / "courses", ignore=shutil.ignore_patterns("generic"))
    return Settings(
        data_dir=data,
        esco_dir="esco/en",
        esco_de_dir="esco/de",
        ba_dir="ba",
        courses_dir="courses",
        store_dir=root / "store",
        model_dir=root / "models",
        cache_dir=root / "cache",
    )
