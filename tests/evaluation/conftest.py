"""A hand-made course table with the real ``Course`` columns, small enough to reason about by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from knowledge.courses.schema import Course


def course(cid: str, title: str, **fields: object) -> Course:
    source = cid.split(":", 1)[0]
    return Course(id=cid, source=source, source_id=cid, title=title, **fields)


@pytest.fixture
def courses() -> pd.DataFrame:
    records = [
        course(
            "coursera:1",
            "Data Mining",
            url="https://www.coursera.org/learn/data-mining",
            description="d",
            language="en",
            free=True,
            price=0.0,
        ),
        course(
            "coursera:2",
            "Excel Basics",
            url="https://www.coursera.org/learn/excel",
            description="d",
            language="en",
            also_in=["coachable:9", "udemy_list:7"],
        ),
        course(
            "edx:1",
            "Data Mining",
            url="https://www.edx.org/course/data-mining",
            description="d",
            language="en",
            price=49.0,
        ),
        course(
            "udemy:1",
            "SQL for Analysts",
            url="https://www.udemy.com/course/sql-analysts/",
            description="d",
            language="en",
            price=20.0,
        ),
        course(
            "udemy:2",
            "SQL for Analysts",
            url="https://www.udemy.com/course/sql-analysts-2/",
            description="d",
            language="en",
        ),
        course(
            "udemy:3",
            "Python!",
            url="https://www.udemy.com/course/python-x/",
            description="d",
            language="en",
            also_in=["coachable:3"],
        ),
        course("udemy_list:1", "Title Only", url="https://www.udemy.com/title-only/", language="en"),
        course("arbeitsagentur:1", "Datenanalyse mit Excel", description="d", language="de"),
    ]
    return pd.DataFrame([r.model_dump() for r in records])
