"""Hard filters over the course table: a course that breaks one is never returned, so results are never
padded with courses the user excluded."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tools.retrieval.base import Filters


def default_languages(lang: str) -> list[str]:
    """The user's language first, English as fallback (the larger catalogs are English)."""
    return [lang] if lang == "en" else [lang, "en"]


def apply_filters(courses: pd.DataFrame, filters: Filters) -> np.ndarray:
    """Boolean mask over ``courses`` rows (columns as in ``Course``)."""
    mask = np.ones(len(courses), dtype=bool)
    if filters.require_description:
        mask &= courses.has_description.to_numpy(dtype=bool)
    if filters.languages:
        mask &= courses.language.isin(filters.languages).to_numpy()
    if filters.free_only:
        mask &= (courses.free == True).to_numpy()  # noqa: E712 — None (unknown) must not pass
    if filters.price_max is not None:
        price = courses.price.to_numpy(dtype=float)
        free = (courses.free == True).to_numpy()  # noqa: E712
        mask &= free | (~np.isnan(price) & (price <= filters.price_max))
    if filters.levels:
        mask &= courses.level.isin(filters.levels).to_numpy()
    if filters.formats:
        mask &= courses.format.isin(filters.formats).to_numpy()
    if filters.providers:
        wanted = {p.lower() for p in filters.providers}
        mask &= courses.provider.fillna("").str.lower().isin(wanted).to_numpy()
    if filters.sources:
        mask &= courses.source.isin(filters.sources).to_numpy()
    return mask
