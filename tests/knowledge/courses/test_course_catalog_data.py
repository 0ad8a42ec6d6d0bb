"""The real catalogs under $CRAFT_DATA_DIR/courses: counts pinned to what the shared snapshot holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from knowledge.courses.catalog import load_catalog
from knowledge.courses.schema import Course
from knowledge.report import LoadReport

# rows read, kept, and rejects by reason; every reject in these files is an exact in-file duplicate.
EXPECTED = {
    "coursera": (1000, 1000, {}),
    "edx": (975, 974, {"duplicate": 1}),
    "udemy": (1114, 1072, {"duplicate": 42}),
    "coachable": (1831, 1831, {}),
    "arbeitsagentur": (20, 20, {}),
    "brandenburg": (19, 19, {}),
    "udemy_list": (3678, 3672, {"duplicate": 6}),
}


@pytest.fixture(scope="module")
def real_catalog() -> tuple[list[Course], list[LoadReport]]:
    root = os.environ.get("CRAFT_DATA_DIR")
    if not root:
        pytest.skip("CRAFT_DATA_DIR is not set")
    courses_dir = Path(root) / "courses"
    if not courses_dir.is_dir():
        pytest.skip(f"{courses_dir} does not exist")
    return load_catalog(courses_dir)


@pytest.mark.data
def test_real_catalog_counts(real_catalog: tuple[list[Course], list[LoadReport]]) -> None:
    courses, reports = real_catalog

    counts = {report.source: (report.rows, report.kept, report.reasons) for report in reports}
    assert counts == EXPECTED
    assert all(not report.notes for report in reports)
    assert len(courses) == sum(kept for _, kept, _ in EXPECTED.values()) - 409  # merged duplicates


@pytest.mark.data
def test_real_catalog_records(real_catalog: tuple[list[Course], list[LoadReport]]) -> None:
    courses, _ = real_catalog

    assert all(course.title.strip() for course in courses)
    assert len({course.id for course in courses}) == len(courses)
    udemy_list = [course for course in courses if course.source == "udemy_list"]
    assert udemy_list and all(not course.has_description for course in udemy_list)
    german = [course for course in courses if course.source in {"arbeitsagentur", "brandenburg"}]
    assert len(german) == 39 and all(course.language == "de" for course in german)
    assert sum(bool(course.esco_skills) for course in courses) == 589  # Coachable never merges with itself
