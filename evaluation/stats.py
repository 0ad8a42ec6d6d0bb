"""Uncertainty of per-query means: percentile bootstrap CIs and a paired randomization test.

The test is Fisher's paired randomization (sign-flip) test on the per-query differences, two-sided, with the
mean difference as statistic (Smucker, Allan & Carterette, CIKM 2007 recommend it for IR). It makes no
normality assumption, which matters with 10 gold occupations. When ``2**n <= resamples`` all sign patterns
are enumerated (exact p-value); otherwise a seeded Monte Carlo sample with the +1 correction is used.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

SEED = 42


class ConfidenceInterval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean: float
    low: float
    high: float
    n: int
    confidence: float
    resamples: int


class PairedTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    p_value: float
    exact: bool
    resamples: int


def _values(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[~np.isnan(array)]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray | pd.Series,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = SEED,
) -> ConfidenceInterval:
    """Percentile bootstrap of the mean over queries (NaN entries, i.e. undefined queries, are dropped)."""
    array = _values(values)
    if len(array) == 0:
        nan = float("nan")
        return ConfidenceInterval(
            mean=nan, low=nan, high=nan, n=0, confidence=confidence, resamples=resamples
        )
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, len(array), size=(resamples, len(array)))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return ConfidenceInterval(
        mean=float(array.mean()),
        low=float(low),
        high=float(high),
        n=len(array),
        confidence=confidence,
        resamples=resamples,
    )


def _paired(
    a: Mapping[str, float] | pd.Series | Sequence[float], b: Mapping[str, float] | pd.Series | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Align two systems' per-query scores; keyed inputs must cover the same queries."""
    if isinstance(a, Mapping | pd.Series) and isinstance(b, Mapping | pd.Series):
        series_a, series_b = pd.Series(a, dtype=float), pd.Series(b, dtype=float)
        if set(series_a.index) != set(series_b.index):
            raise ValueError("the two systems were scored on different queries")
        return series_a.sort_index().to_numpy(), series_b.sort_index().to_numpy()
    array_a, array_b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if array_a.shape != array_b.shape:
        raise ValueError("the two score lists differ in length")
    return array_a, array_b


def paired_randomization_test(
    a: Mapping[str, float] | pd.Series | Sequence[float],
    b: Mapping[str, float] | pd.Series | Sequence[float],
    resamples: int = 10_000,
    seed: int = SEED,
) -> PairedTest:
    """Two-sided p-value that systems a and b have the same mean per-query score (pairs by query)."""
    array_a, array_b = _paired(a, b)
    keep = ~(np.isnan(array_a) | np.isnan(array_b))
    diff = array_a[keep] - array_b[keep]
    n = len(diff)
    if n == 0:
        raise ValueError("no query scored by both systems")
    observed = abs(diff.mean())
    tolerance = 1e-12 * max(1.0, observed)
    exact = 2**n <= resamples
    if exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        extreme = np.abs((signs * diff).mean(axis=1)) >= observed - tolerance
        p_value = float(extreme.mean())
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(resamples, n))
        extreme = np.abs((signs * diff).mean(axis=1)) >= observed - tolerance
        p_value = float((extreme.sum() + 1) / (resamples + 1))
    return PairedTest(
        test="paired randomization (sign-flip), two-sided, mean difference",
        n=n,
        mean_a=float(array_a[keep].mean()),
        mean_b=float(array_b[keep].mean()),
        mean_diff=float(diff.mean()),
        p_value=p_value,
        exact=exact,
        resamples=2**n if exact else resamples,
    )
